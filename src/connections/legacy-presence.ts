import { RedisClient } from './redis-client';

/** How old a finding may be before it is checked again (in the background, never on the path). */
const RECHECK_MS = 10_000;

/**
 * Whether the single sorted set of an earlier version's due-work schedule may still hold entries.
 * Once the periodic repair has moved them over, the set is gone, and a token read that moves a
 * connection's refresh earlier (ZADD LT) need not first look up its entry there: that saves the
 * read's mark a round trip (docs/architecture.md, what a connection costs in Redis). A finding is
 * re-checked every RECHECK_MS with one EXISTS sent beside the caller's own commands, so a process
 * of the earlier version still writing the set during a rolling deploy is noticed again; in that
 * window an earlier due time it wrote may be replaced by the later one asked for (the due entry in
 * the older set is still removed, the record's own due time still moves earlier).
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
