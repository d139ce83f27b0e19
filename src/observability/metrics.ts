import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface BrokerMetrics {
  registry: Registry;
  httpRequests: Counter<'listener' | 'route' | 'method' | 'status'>;
  httpDuration: Histogram<'listener' | 'route' | 'method'>;
  connectAttempts: Counter<'provider' | 'outcome'>;
  refreshes: Counter<'provider' | 'outcome' | 'trigger'>;
  refreshDuration: Histogram<'provider'>;
  lockWaits: Counter<'outcome'>;
  lockWaitDuration: Histogram;
  redisErrors: Counter;
  sweepDuration: Histogram;
  dueBacklog: Gauge;
  webhookDeliveries: Counter<'event' | 'outcome'>;
  /** 401/403 answers of the internal API, by actor (`unknown` for a 401) and code. */
  authRefusals: Counter<'actor' | 'code'>;
  /** Credentials handed out (token API 200, proxied requests), by actor and action. */
  handOuts: Counter<'actor' | 'action'>;
  /** Audit entries that could not be written, by kind (`hand_out`: nothing was handed out; `change`). */
  auditWriteFailures: Counter<'kind'>;
}

/**
 * Prometheus metrics, served on the internal listener only. Labels never carry ids or secrets.
 * Connections per key id are deliberately not a metric: counting them means reading every record
 * (what `keys status` does, paging through the listing index), too much for a scrape, and a
 * counter kept beside the records could not be updated atomically with them on a Redis Cluster
 * (another hash slot), so it would drift. During a key rotation, `keys status` is the gauge.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): BrokerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'oauth_broker_' });
  const latency = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    httpRequests: new Counter({
      name: 'oauth_broker_http_requests_total',
      help: 'HTTP requests answered, by listener, route, method and status',
      labelNames: ['listener', 'route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'oauth_broker_http_request_duration_seconds',
      help: 'HTTP request latency by listener, route and method',
      labelNames: ['listener', 'route', 'method'],
      buckets: latency,
      registers: [registry],
    }),
    connectAttempts: new Counter({
      name: 'oauth_broker_connect_attempts_total',
      help: 'Connect flow steps by provider and outcome',
      labelNames: ['provider', 'outcome'],
      registers: [registry],
    }),
    refreshes: new Counter({
      name: 'oauth_broker_refreshes_total',
      help: 'Refresh-token grants by provider, outcome and trigger (caller, refresh_ahead, keepalive, retry)',
      labelNames: ['provider', 'outcome', 'trigger'],
      registers: [registry],
    }),
    refreshDuration: new Histogram({
      name: 'oauth_broker_refresh_duration_seconds',
      help: 'Duration of refresh-token grants at the provider',
      labelNames: ['provider'],
      buckets: latency,
      registers: [registry],
    }),
    lockWaits: new Counter({
      name: 'oauth_broker_lock_waits_total',
      help: 'Callers that waited for another refresh of the same connection, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    lockWaitDuration: new Histogram({
      name: 'oauth_broker_lock_wait_duration_seconds',
      help: 'Time callers waited for another refresh of the same connection',
      buckets: latency,
      registers: [registry],
    }),
    redisErrors: new Counter({
      name: 'oauth_broker_redis_errors_total',
      help: 'Requests that failed because Redis could not be reached',
      registers: [registry],
    }),
    sweepDuration: new Histogram({
      name: 'oauth_broker_sweep_duration_seconds',
      help: 'Duration of one look at the due-work schedule',
      buckets: latency,
      registers: [registry],
    }),
    dueBacklog: new Gauge({
      name: 'oauth_broker_due_backlog',
      help: 'Connections due for background work at the last sweep',
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'oauth_broker_webhook_deliveries_total',
      help: 'Webhook delivery attempts by event and outcome',
      labelNames: ['event', 'outcome'],
      registers: [registry],
    }),
    // Actors are the configured services and INTERNAL_API_KEYS keys (a 401 counts as `unknown`),
    // so these labels stay bounded whatever callers send.
    authRefusals: new Counter({
      name: 'oauth_broker_auth_refusals_total',
      help: 'Internal API requests refused with 401 or 403, by actor and code',
      labelNames: ['actor', 'code'],
      registers: [registry],
    }),
    handOuts: new Counter({
      name: 'oauth_broker_credential_hand_outs_total',
      help: 'Credentials handed out (token API, proxy), by actor and action',
      labelNames: ['actor', 'action'],
      registers: [registry],
    }),
    auditWriteFailures: new Counter({
      name: 'oauth_broker_audit_write_failures_total',
      help: 'Audit log entries that could not be written, by kind (hand_out: refused with 503; change)',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}
