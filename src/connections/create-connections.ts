import { Config } from '../config/config';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';
import { CircuitBreaker } from '../oauth/circuit-breaker';
import { ProviderHttp } from '../oauth/provider-http';
import { TokenEndpointDeps } from '../oauth/request-token';
import { BackgroundRevocations } from './background-revocations';
import { ConnectionEvents } from './connection-events';
import { ConnectionService } from './connection-service';
import { ConnectionStore } from './connection-store';
import { KeyRing } from './key-ring';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';
import { RefreshCoordinator } from './refresh-coordinator';
import { RefreshLock } from './refresh-lock';
import { scheduleSettingsFor } from './schedule';

/** The configuration the connection stack is built from. */
export type ConnectionsConfig = Pick<
  Config,
  | 'encryptionKeys'
  | 'redisWaitReplicas'
  | 'redisWaitTimeoutMs'
  | 'circuitThreshold'
  | 'circuitOpenSeconds'
  | 'refreshMarginSeconds'
  | 'refreshAhead'
  | 'sweepIntervalSeconds'
  | 'providerTimeoutSeconds'
>;

export interface ConnectionsDeps {
  redis: RedisClient;
  keys: RedisKeys;
  /** Every outbound provider call (token endpoint, revocation). */
  http: ProviderHttp;
  logger: Logger;
  metrics: BrokerMetrics;
  events: ConnectionEvents;
  now?: () => number;
}

export interface Connections {
  store: ConnectionStore;
  lock: RefreshLock;
  keyRing: KeyRing;
  /** Token endpoint calls with their retries and per-provider circuit breakers; the connect flow's too. */
  tokenEndpoint: TokenEndpointDeps;
  connections: ConnectionService;
}

/**
 * The connection stack, built one way for the broker, the CLI and the tests: the store (writes
 * confirmed by REDIS_WAIT_REPLICAS), the refresh lock, the key ring, the token endpoint with its
 * circuit breakers, the refresh coordinator and the service over them.
 */
export function createConnections(config: ConnectionsConfig, deps: ConnectionsDeps): Connections {
  const now = deps.now ?? Date.now;
  const store = new ConnectionStore(deps.redis, deps.keys, {
    replicas: config.redisWaitReplicas,
    timeoutMs: config.redisWaitTimeoutMs,
  });
  const lock = new RefreshLock(deps.redis, deps.keys);
  const keyRing = new KeyRing(config.encryptionKeys);
  const tokenEndpoint: TokenEndpointDeps = {
    http: deps.http,
    breakers: new Map<string, CircuitBreaker>(),
    retries: 1,
    circuit: { threshold: config.circuitThreshold, openMs: config.circuitOpenSeconds * 1000 },
  };
  const revocations = new BackgroundRevocations({ http: deps.http, logger: deps.logger });
  const coordinator = new RefreshCoordinator({
    store,
    lock,
    keyRing,
    tokenEndpoint,
    settings: config,
    logger: deps.logger,
    metrics: deps.metrics,
    events: deps.events,
    now,
    schedule: (provider) => scheduleSettingsFor(config, provider),
    revoke: (provider, connectionId, secrets) => revocations.revokeLater(provider, connectionId, secrets),
  });
  const connections = new ConnectionService({
    store,
    keyRing,
    coordinator,
    revocations,
    settings: config,
    logger: deps.logger,
    events: deps.events,
    now,
  });
  return { store, lock, keyRing, tokenEndpoint, connections };
}
