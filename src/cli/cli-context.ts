import { AuditLog } from '../audit/audit-log';
import { createAuditLog } from '../audit/create-audit-log';
import { Config } from '../config/config';
import { ConnectionService } from '../connections/connection-service';
import { ConnectionStore } from '../connections/connection-store';
import { createConnections } from '../connections/create-connections';
import { KeyRing } from '../connections/key-ring';
import { RedisClient, createRedisClient, waitForReady } from '../connections/redis-client';
import { RedisKeys } from '../connections/redis-keys';
import { noEvents } from '../connections/connection-events';
import { createLogger } from '../observability/logger';
import { createMetrics } from '../observability/metrics';
import { createProviderHttp } from '../oauth/provider-http';
import { ProviderRegistry } from '../providers/provider-registry';
import { loadProviderRegistry } from '../providers/load-registry';

export interface CliContext {
  config: Config;
  registry: ProviderRegistry;
  redis: RedisClient;
  store: ConnectionStore;
  keyRing: KeyRing;
  connections: ConnectionService;
  /** The audit log, written as actor `cli` (rekey, delete) and read by `audit`. */
  audit: AuditLog;
  /** The Redis key of audit shard `index`. */
  auditShardKey: (index: number) => string;
  close(): Promise<void>;
}

/** The same stores the broker uses, without its listeners: admin commands work beside live brokers. */
export async function createCliContext(config: Config): Promise<CliContext> {
  const registry = loadProviderRegistry(config);
  const redis = createRedisClient(config.redis);
  redis.on('error', () => undefined);
  if (!(await waitForReady(redis, 5000))) {
    redis.disconnect();
    throw new Error('Redis does not answer (check REDIS_URL / REDIS_SENTINELS / REDIS_CLUSTER_NODES)');
  }
  const keys = new RedisKeys(config.redisKeyPrefix);
  // A command's answer is its output: routine info lines would bury it, so `info` becomes `warn`.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const metrics = createMetrics();
  const { audit, shardKey: auditShardKey } = createAuditLog(config, { redis, keys, logger, metrics });
  const { store, keyRing, connections } = createConnections(config, {
    redis,
    keys,
    http: createProviderHttp({ timeoutMs: config.providerTimeoutSeconds * 1000 }),
    logger,
    metrics,
    events: noEvents,
  });
  return {
    config,
    registry,
    redis,
    store,
    keyRing,
    connections,
    audit,
    auditShardKey,
    async close() {
      await connections.drain();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
