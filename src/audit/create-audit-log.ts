import type { Config } from '../config/config';
import type { RedisClient } from '../connections/redis-client';
import type { RedisKeys } from '../connections/redis-keys';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';
import { AuditLog } from './audit-log';

export interface AuditLogParts {
  audit: AuditLog;
  /** The Redis key of shard `index`, for reading the log (`readAuditLog`). */
  shardKey: (index: number) => string;
}

/** The audit log as the broker and the CLI both build it: AUDIT and AUDIT_MAX_ENTRIES, the shared shards. */
export function createAuditLog(
  config: Pick<Config, 'audit' | 'auditMaxEntries'>,
  deps: {
    redis: RedisClient;
    keys: Pick<RedisKeys, 'auditShard'>;
    logger: Logger;
    metrics: BrokerMetrics;
    flushWrites?: () => void;
  },
): AuditLogParts {
  const shardKey = (index: number): string => deps.keys.auditShard(index);
  const audit = new AuditLog({
    redis: deps.redis,
    shardKey,
    enabled: config.audit,
    maxEntries: config.auditMaxEntries,
    logger: deps.logger,
    metrics: deps.metrics,
    flushWrites: deps.flushWrites,
  });
  return { audit, shardKey };
}
