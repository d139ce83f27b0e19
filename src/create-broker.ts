import type { RequestListener } from 'node:http';
import { Express } from 'express';
import { createCallerResolver } from './access/caller-resolver';
import { checkGrantProviders } from './access/check-grant-providers';
import { loadServiceKeys } from './access/load-service-keys';
import { AuditLog } from './audit/audit-log';
import { createAuditLog } from './audit/create-audit-log';
import { readAuditLog } from './audit/read-audit-log';
import { Config } from './config/config';
import { isHttpsUrl } from './config/is-https-url';
import { ConnectSessionStore } from './connections/connect-session-store';
import { FlowStore } from './connections/flow-store';
import { ConnectionEvents, noEvents } from './connections/connection-events';
import { ConnectionService } from './connections/connection-service';
import { createConnections } from './connections/create-connections';
import {
  RedisClient,
  coalesceWrites,
  createRedisClient,
  flushWrites,
  guardStoreFailures,
} from './connections/redis-client';
import { RedisKeys } from './connections/redis-keys';
import { BrokerError } from './errors/broker-error';
import { InternalAccess } from './http/internal-access';
import { createInternalHandler } from './http/internal-app';
import { failurePage } from './http/pages/connect-pages';
import { createPublicApp } from './http/public-app';
import { createRateLimiter, rateLimitEveryRequest } from './http/rate-limit';
import { sendPage } from './http/pages/send-page';
import { FLOW_TTL_MS, createSessionMiddleware } from './http/session';
import { Sweeper } from './jobs/sweeper';
import { BrokerMetrics, createMetrics } from './observability/metrics';
import { Logger } from './observability/logger';
import { ProviderHttp, createProviderHttp } from './oauth/provider-http';
import { ProviderRegistry } from './providers/provider-registry';
import { loadProviderRegistry } from './providers/load-registry';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher';
import { createProxy } from './proxy/create-proxy';
import { ProxyHooks } from './proxy/proxy-hooks';
import { createProxyMetrics } from './proxy/proxy-metrics';
import { UpstreamAgents, createUpstreamAgents } from './proxy/send-upstream';
import { authFailureLimitMessage } from './http/auth-failure-limit-message';

export interface BrokerOptions {
  logger: Logger;
  /** An existing client (tests); otherwise one is built from the configuration. */
  redis?: RedisClient;
  registry?: ProviderRegistry;
  metrics?: BrokerMetrics;
  events?: ConnectionEvents;
  http?: ProviderHttp;
  /** The proxy's two hooks (caller's grant, credential use); by default the key alone decides. */
  proxyHooks?: ProxyHooks;
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
  /** The audit log (src/audit/); writes nothing with AUDIT=off. */
  audit: AuditLog;
  /**
   * The internal API's gate: resolves a key to a caller, checks its grant, writes the fail-closed
   * hand-out entry. The proxy uses it from its raw handler (`authorize`, then `handOut`).
   */
  access: InternalAccess;
  /** Present when WEBHOOK_URL is set. */
  webhooks?: WebhookDispatcher;
  /** The proxy's keep-alive pools to the providers' APIs (destroyed at shutdown). */
  upstreamAgents: UpstreamAgents;
}

/** Builds every part of a broker from its configuration and passes each its dependencies. */
export function createBroker(config: Config, options: BrokerOptions): Broker {
  const { logger } = options;
  const registry = options.registry ?? loadProviderRegistry(config);
  // A bad SERVICE_KEYS_FILE stops start-up, like a bad PROVIDERS_FILE, naming the entry and field.
  const services = loadServiceKeys(config.serviceKeysFile);
  checkGrantProviders(services, registry);
  const metrics = options.metrics ?? createMetrics();
  // A client passed in goes through the same store boundary as one built here.
  const redis = options.redis
    ? coalesceWrites(guardStoreFailures(options.redis))
    : createRedisClient(config.redis);
  const keys = new RedisKeys(config.redisKeyPrefix);
  const { audit, shardKey } = createAuditLog(config, {
    redis,
    keys,
    logger: logger.child({ module: 'audit' }),
    metrics,
    flushWrites: () => flushWrites(redis),
  });
  const access = new InternalAccess({
    resolve: createCallerResolver(config.internalApiKeys, services),
    audit,
    metrics,
  });
  const http = options.http ?? createProviderHttp({ timeoutMs: config.providerTimeoutSeconds * 1000 });

  const webhooks =
    config.webhookUrl && config.webhookSecret
      ? new WebhookDispatcher({
          redis,
          keys,
          http,
          logger: logger.child({ module: 'webhooks' }),
          metrics,
          settings: {
            url: config.webhookUrl,
            secret: config.webhookSecret,
            sendTimeoutMs: config.providerTimeoutSeconds * 1000,
          },
        })
      : undefined;
  const { store, tokenEndpoint, connections } = createConnections(config, {
    redis,
    keys,
    http,
    logger: logger.child({ module: 'connections' }),
    metrics,
    events: options.events ?? webhooks ?? noEvents,
  });
  const connectSessions = new ConnectSessionStore(redis, keys, config.connectSessionTtlSeconds);
  // A used `state` stays refused for an hour, well past the 10 minutes a flow lives.
  const flows = new FlowStore(redis, keys, FLOW_TTL_MS / 1000, 3600);

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
    flows,
    connections,
    tokenEndpoint,
    http,
    logger: logger.child({ listener: 'public' }),
    metrics,
    audit,
  });
  if (config.trustProxy) publicApp.set('trust proxy', parseTrustProxy(config.trustProxy));

  const upstreamAgents = createUpstreamAgents();
  const proxy = createProxy({
    connections,
    refreshMarginSeconds: config.refreshMarginSeconds,
    timeoutMs: config.proxyTimeoutSeconds * 1000,
    agents: upstreamAgents,
    hooks: options.proxyHooks ?? auditedProxyHooks(access),
    metrics: createProxyMetrics(metrics),
    logger: logger.child({ module: 'proxy' }),
  });

  const internalHandler = createInternalHandler({
    publicUrl: config.publicUrl,
    allowedReturnUrls: config.allowedReturnUrls,
    refreshMarginSeconds: config.refreshMarginSeconds,
    access,
    readAudit: (query) => readAuditLog(redis, shardKey, query),
    registry,
    connectSessions,
    connections,
    proxy,
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
    audit,
    access,
    webhooks,
    upstreamAgents,
  };
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

/**
 * The proxy joined to the internal API's gate: the caller's grant is checked at the route (before
 * anything is looked up), and every proxied request is a credential hand-out whose audit entry is
 * in Redis before anything goes upstream (fail closed: docs/least-privilege.md). Its `status` is
 * the broker's (200: the credential was used); the upstream's own status is in the proxy's log line.
 */
function auditedProxyHooks(access: InternalAccess): ProxyHooks {
  return {
    credentialAboutToBeUsed: (call) =>
      access.handOut(
        call.caller,
        call.req,
        'proxy',
        { provider: call.provider.id, connectionId: call.connectionId },
        call.requestId,
      ),
  };
}
