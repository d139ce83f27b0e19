import { RedisClient } from './redis-client';

/** How old a finding may be before it is checked again (in the background, never on the path). */
const RECHECK_MS = 10_000;

/**
 * Whether the single sorted set of an earlier version (the listing index's or the schedule's) may
 * still hold entries. Once the periodic repair has moved them over, the set is gone and a write
 * need not clean it up: that saves the write a round trip (docs/architecture.md, what a
 * connection costs in Redis). A finding is re-checked every RECHECK_MS with one EXISTS sent beside
 * the caller's own commands, so a process of the earlier version still writing the set during a
 * rolling deploy is noticed again. Skipping the clean-up is always safe: every reader still merges
 * the old set in, every removal still clears it, and the repair moves what is left.
 */
export class LegacyPresence {
  private absent = false;
  private checkedAt = -Infinity;
  private checking = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: () => string,
  ) {}

  /** False only when a check found the set gone; a stale finding is re-checked in the background. */
  mayHoldEntries(now = Date.now()): boolean {
    if (!this.checking && now - this.checkedAt > RECHECK_MS) {
      this.checking = true;
      this.redis
        .exists(this.key())
        .then((count) => {
          this.absent = count === 0;
          this.checkedAt = Date.now();
        })
        .catch(() => undefined)
        .finally(() => (this.checking = false));
    }
    return !this.absent;
  }
}
