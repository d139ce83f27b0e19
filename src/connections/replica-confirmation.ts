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

/** What `INFO replication` says that matters here. */
export interface ReplicationState {
  isMaster: boolean;
  /** The master's replication id: a promoted replica starts a new one. */
  replicationId: string;
  /** Replicas in the `online` state (a replica still loading its first sync holds nothing yet). */
  onlineReplicas: number;
}

export function parseReplicationInfo(info: string): ReplicationState {
  let isMaster = false;
  let replicationId = '';
  let onlineReplicas = 0;
  for (const line of info.split(/\r?\n/)) {
    if (line === 'role:master') isMaster = true;
    else if (line.startsWith('master_replid:')) replicationId = line.slice('master_replid:'.length);
    else if (/^slave\d+:/.test(line) && /(^|,)state=online(,|$)/.test(line.slice(line.indexOf(':') + 1)))
      onlineReplicas += 1;
  }
  return { isMaster, replicationId, onlineReplicas };
}

/**
 * Confirms that a connection's last write is on a replica before it is acknowledged (Redis
 * replication is asynchronous: docs/redis-topologies.md). `INFO replication` says whether this
 * client still talks to a master, which one (its replication id, new at every promotion) and how
 * many replicas it has online; `WAIT` then waits for them (it covers every write this connection
 * sent so far). A master without replicas, now and for the last REPLICATED_GRACE_MS, has nothing
 * to wait for (a Sentinel set-up without replicas, a replica just promoted after its master died,
 * a test): the write is acknowledged as the master holds it. The grace belongs to the master that
 * had the replicas, never to the one promoted in its place. Otherwise fewer confirmations than
 * asked for, in time, make the write a store failure (503): the caller tries again, against the
 * new master when a failover was under way.
 */
export class ReplicaConfirmation {
  private lastSeenWithReplicas = 0;
  private replicatedMaster = '';

  constructor(
    private readonly redis: RedisClient,
    private readonly durability: StoreDurability,
  ) {}

  async confirm(now = Date.now()): Promise<void> {
    const state = parseReplicationInfo(await this.redis.info('replication'));
    if (!state.isMaster) throw unconfirmed('the server is no longer the master');
    if (state.onlineReplicas > 0) {
      this.lastSeenWithReplicas = now;
      this.replicatedMaster = state.replicationId;
    } else if (
      state.replicationId !== this.replicatedMaster ||
      now - this.lastSeenWithReplicas > REPLICATED_GRACE_MS
    )
      return;
    const wanted = Math.max(1, Math.min(this.durability.replicas, state.onlineReplicas));
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
