import { RedisClient } from './redis-client';
import { StoreUnavailableError } from './store-unavailable-error';

/** How many replicas must hold a connection write before it is acknowledged, and how long to wait. */
export interface StoreDurability {
  replicas: number;
  timeoutMs: number;
}

/**
 * A master that had replicas this recently still counts as replicated: a failover under way takes
 * its replica away (the one being promoted) a moment before it demotes the master, and a write
 * acknowledged in that moment would be lost with it.
 */
const REPLICATED_GRACE_MS = 30_000;

/**
 * Confirms that a connection's last write is on a replica before it is acknowledged (Redis
 * replication is asynchronous: docs/redis-topologies.md). `ROLE` says whether this client still
 * talks to a master and how many replicas it has; `WAIT` then waits for them (it covers every
 * write this connection sent so far). A master without replicas, now and for the last
 * REPLICATED_GRACE_MS, has nothing to wait for (a Sentinel set-up without replicas, a test): the
 * write is acknowledged as the master holds it. Otherwise fewer confirmations than asked for, in
 * time, make the write a store failure (503): the caller tries again, against the new master
 * when a failover was under way.
 */
export class ReplicaConfirmation {
  private lastSeenWithReplicas = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly durability: StoreDurability,
  ) {}

  async confirm(now = Date.now()): Promise<void> {
    const role = (await this.redis.role()) as unknown[];
    if (role[0] !== 'master') throw unconfirmed('the server is no longer the master');
    const connected = Array.isArray(role[2]) ? role[2].length : 0;
    if (connected > 0) this.lastSeenWithReplicas = now;
    else if (now - this.lastSeenWithReplicas > REPLICATED_GRACE_MS) return;
    const wanted = Math.max(1, Math.min(this.durability.replicas, connected));
    const confirmed = await this.redis.wait(wanted, this.durability.timeoutMs);
    if (confirmed < wanted)
      throw unconfirmed(
        `the write reached ${confirmed} of ${wanted} replica(s) in ${this.durability.timeoutMs} ms`,
      );
  }
}

function unconfirmed(why: string): StoreUnavailableError {
  return new StoreUnavailableError(new Error(why));
}
