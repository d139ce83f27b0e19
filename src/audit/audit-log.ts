import type { RedisClient } from '../connections/redis-client';
import { BrokerError } from '../errors/broker-error';
import { BrokerMetrics } from '../observability/metrics';
import { Logger, errorForLog } from '../observability/logger';
import { AuditEvent, eventFields } from './audit-entry';
import { AppendBatcher } from './append-batcher';

/**
 * Streams the log is sharded over: `<prefix>{audit:0}` … `{audit:15}`, each its own hash tag, so
 * on a Cluster the entries spread over 16 slots instead of one slot (one node) taking every write.
 * Fixed, so every process and the CLI agree on where to read and write.
 */
export const AUDIT_SHARDS = 16;

/** Below this many entries per shard trimming is exact; above it `MAXLEN ~` trims whole stream nodes. */
const EXACT_TRIM_BELOW = 1000;

export interface AuditLogDeps {
  redis: RedisClient;
  /** The Redis key of shard `index` (RedisKeys.auditShard). */
  shardKey: (index: number) => string;
  enabled: boolean;
  maxEntries: number;
  logger: Logger;
  metrics: BrokerMetrics;
  /** Sends the client's coalesced writes at once (flushWrites of src/connections/redis-client.ts). */
  flushWrites?: () => void;
}

/**
 * The audit log's writing side. A hand-out's entry is awaited before the credential is answered
 * (fail closed: no entry, no credential); every other entry is written after the change it records,
 * and a failure to write it is logged and counted, never undoing the change.
 *
 * An entry goes to the shard its connection hashes to, so one connection's history sits in one
 * stream (read with one XREVRANGE); entries without a connection (a 401) go round the shards.
 * Each shard keeps AUDIT_MAX_ENTRIES / 16 entries (XADD MAXLEN in the same command: no separate
 * trim), so the log as a whole keeps at most AUDIT_MAX_ENTRIES. Entries of one turn of the event
 * loop are written together (AppendBatcher).
 */
export class AuditLog {
  readonly enabled: boolean;
  private readonly keys: string[];
  private readonly batcher: AppendBatcher;
  private rotation = 0;
  private lastWarning = 0;

  constructor(private readonly deps: AuditLogDeps) {
    this.enabled = deps.enabled;
    this.keys = Array.from({ length: AUDIT_SHARDS }, (_, i) => deps.shardKey(i));
    const perShard = Math.max(1, Math.floor(deps.maxEntries / AUDIT_SHARDS));
    this.batcher = new AppendBatcher(
      deps.redis,
      [perShard < EXACT_TRIM_BELOW ? '=' : '~', String(perShard)],
      deps.flushWrites,
    );
  }

  /** The shard of a connection's entries; round robin for entries without one. */
  shardOf(provider?: string, connectionId?: string): number {
    if (provider === undefined || connectionId === undefined) {
      this.rotation = (this.rotation + 1) % AUDIT_SHARDS;
      return this.rotation;
    }
    return shardFor(provider, connectionId);
  }

  /**
   * Writes a credential hand-out's entry; resolves once Redis holds it. Rejects with
   * `store_unavailable` when it cannot be written (Redis away, or refusing the write): the caller
   * must then hand nothing out.
   */
  async handOut(event: AuditEvent): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.append(event);
    } catch (error) {
      this.deps.metrics.auditWriteFailures.inc({ kind: 'hand_out' });
      throw new BrokerError(
        'store_unavailable',
        'The audit log cannot be written, so no credential is handed out; try again shortly.',
        { cause: error },
      );
    }
  }

  /** Writes the entry of a change already made; a failure is logged and counted, nothing more. */
  record(event: AuditEvent): void {
    if (!this.enabled) return;
    this.append(event).catch((error: unknown) => this.lost(event, error));
  }

  /** Like `record`, for callers that want to wait (the CLI, before it exits). */
  async recordAndWait(event: AuditEvent): Promise<void> {
    if (!this.enabled) return;
    await this.append(event).then(
      () => undefined,
      (error: unknown) => this.lost(event, error),
    );
  }

  /** Counts every lost entry; logs one line a second at most (while Redis is away, every change fails alike). */
  private lost(event: AuditEvent, error: unknown): void {
    this.deps.metrics.auditWriteFailures.inc({ kind: 'change' });
    const now = Date.now();
    if (now - this.lastWarning < 1000) return;
    this.lastWarning = now;
    this.deps.logger.warn(
      { err: errorForLog(error), action: event.action, provider: event.provider },
      'audit entry not written (further ones this second not logged; see oauth_broker_audit_write_failures_total)',
    );
  }

  private append(event: AuditEvent): Promise<void> {
    const key = this.keys[this.shardOf(event.provider, event.connection_id)]!;
    return this.batcher.add(key, eventFields(event)[1]);
  }
}

/** FNV-1a over `provider:connection_id`: cheap, stable across processes, spreads ids evenly. */
export function shardFor(provider: string, connectionId: string): number {
  let hash = 0x811c9dc5;
  const text = `${provider}:${connectionId}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % AUDIT_SHARDS;
}
