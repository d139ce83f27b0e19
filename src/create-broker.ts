import type { RequestListener } from 'node:http';
import { Express } from 'express';
import { Config } from './config/config';
import { isHttpsUrl } from './config/is-https-url';
import { ConnectSessionStore, UsedStateStore } from './connections/connect-session-store';
import { FlowStore } from './connections/flow-store';
import { ConnectionEvents, noEvents } from './connections/connection-events';
import { ConnectionService } from './connections/connection-service';
import { ConnectionStore } from './connections/connection-store';
import { KeyRing } from './connections/key-ring';
import { RedisClient, createRedisClient, guardStoreFailures } from './connections/redis-client';
import { RedisKeys } from './connections/redis-keys';
import { RefreshLock } from './connections/refresh-lock';
import { BrokerError } from './errors/broker-error';
import { createInternalHandler } from './http/internal-app';
import { failurePage } from './http/pages/connect-pages';
import { createPublicApp } from './http/public-app';
import { createRateLimiter, rateLimitEveryRequest } from './http/rate-limit';
import { sendPage } from './http/pages/send-page';
import { FLOW_TTL_MS, createSessionMiddleware } from './http/session';
import { Sweeper } from './jobs/sweeper';
import { BrokerMetrics, createMetrics } from './observability/metrics';
import { Logger } from './observability/logger';
import { CircuitBreaker } from './oauth/circuit-breaker';
import { ProviderHttp, createProviderHttp } from './oauth/provider-http';
import { TokenEndpointDeps } from './oauth/request-token';
import { ProviderRegistry } from './providers/provider-registry';
import { loadProviderRegistry } from './providers/load-registry';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher';
import { authFailureLimitMessage } from './http/auth-failure-limit-message';

export interface BrokerOptions {
  logger: Logger;
  /** An existing client (tests); otherwise one is built from the configuration. */
  redis?: RedisClient;
  registry?: ProviderRegistry;
  metrics?: BrokerMetrics;
  events?: ConnectionEvents;
  http?: ProviderHttp;
}

export interface Broker {
  config: Config;
  logger: Logger;
  registry: ProviderRegistry;
  redis: RedisClient;
  keys: RedisKeys;
  metrics: BrokerMetrics;
  publicApp: Express;
  /** The internal listener's handler: the token API's fast path in front of the Express app. */
  internalHandler: RequestListener;
  connections: ConnectionService;
  sweeper: Sweeper;
  /** Present when WEBHOOK_URL is set. */
  webhooks?: WebhookDispatcher;
}

/** Builds every part of a broker from its configuration and passes each its dependencies. */
export function createBroker(config: Config, options: BrokerOptions): Broker {
  const { logger } = options;
  const registry = options.registry ?? loadProviderRegistry(config);
  const metrics = options.metrics ?? createMetrics();
  // A client passed in goes through the same store boundary as one built here.
  const redis = options.redis ? guardStoreFailures(options.redis) : createRedisClient(config.redis);
  const keys = new RedisKeys(config.redisKeyPrefix);
  const keyRing = new KeyRing(config.encryptionKeys);
  const http = options.http ?? createProviderHttp({ timeoutMs: config.providerTimeoutSeconds * 1000 });
  const tokenEndpoint: TokenEndpointDeps = {
    http,
    breakers: new Map<string, CircuitBreaker>(),
    retries: 1,
    circuit: { threshold: config.circuitThreshold, openMs: config.circuitOpenSeconds * 1000 },
  };

  const webhooks =
    config.webhookUrl && config.webhookSecret
      ? new WebhookDispatcher({
          redis,
          keys,
          http,
          logger: logger.child({ module: 'webhooks' }),
          metrics,
          settings: { url: config.webhookUrl, secret: config.webhookSecret },
        })
      : undefined;
  const store = new ConnectionStore(redis, keys);
  const connections = new ConnectionService({
    store,
    lock: new RefreshLock(redis, keys),
    keyRing,
    tokenEndpoint,
    http,
    settings: config,
    logger: logger.child({ module: 'connections' }),
    metrics,
    events: options.events ?? webhooks ?? noEvents,
  });
  const connectSessions = new ConnectSessionStore(redis, keys, config.connectSessionTtlSeconds);
  const usedStates = new UsedStateStore(redis, keys, 3600);
  const flows = new FlowStore(redis, keys, FLOW_TTL_MS / 1000);

  const rateLimit =
    config.rateLimitPerMinute > 0
      ? rateLimitEveryRequest({
          redis,
          prefix: `${keys.rateLimitPrefix()}browser:`,
          limit: config.rateLimitPerMinute,
          windowMs: 60_000,
          onLimited: (_req, res) => sendPage(res, 429, failurePage('rate_limited')),
        })
      : undefined;
  const authFailures =
    config.authFailureLimitPerMinute > 0
      ? createRateLimiter({
          redis,
          prefix: `${keys.rateLimitPrefix()}auth-failures:`,
          limit: config.authFailureLimitPerMinute,
          windowMs: 60_000,
          onLimited: () => undefined,
        })
      : undefined;

  const publicApp = createPublicApp({
    publicUrl: config.publicUrl,
    allowedReturnUrls: config.allowedReturnUrls,
    sessionMiddleware: createSessionMiddleware({
      redis,
      prefix: keys.sessionPrefix(),
      secrets: config.sessionSecrets,
      secureCookie: isHttpsUrl(config.publicUrl),
    }),
    rateLimit,
    registry,
    connectSessions,
    usedStates,
    flows,
    connections,
    tokenEndpoint,
    http,
    logger: logger.child({ listener: 'public' }),
    metrics,
  });
  if (config.trustProxy) publicApp.set('trust proxy', parseTrustProxy(config.trustProxy));

  const internalHandler = createInternalHandler({
    publicUrl: config.publicUrl,
    allowedReturnUrls: config.allowedReturnUrls,
    refreshMarginSeconds: config.refreshMarginSeconds,
    internalApiKeys: config.internalApiKeys,
    registry,
    connectSessions,
    connections,
    redis,
    logger: logger.child({ listener: 'internal' }),
    metrics,
    authFailureLimit: authFailures
      ? (req, res, deny) => {
          authFailures
            .hit(req, res)
            .then((over) =>
              over
                ? deny(
                    new BrokerError(
                      'rate_limited',
                      authFailureLimitMessage(config.authFailureLimitPerMinute),
                    ),
                  )
                : deny(),
            )
            .catch(() => deny());
        }
      : undefined,
  });

  const sweeper = new Sweeper({
    connections,
    registry,
    intervalMs: config.sweepIntervalSeconds * 1000,
    concurrency: config.sweepConcurrency,
    perProviderConcurrency: config.sweepConcurrencyPerProvider,
    logger: logger.child({ module: 'sweeper' }),
    metrics,
    ownerRepair: store.owners,
  });

  return {
    config,
    logger,
    registry,
    redis,
    keys,
    metrics,
    publicApp,
    internalHandler,
    connections,
    sweeper,
    webhooks,
  };
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
