import { Counter, Histogram } from 'prom-client';
import { BrokerMetrics } from '../observability/metrics';

/**
 * The proxy's series, on the broker's registry. Labels are the provider id, the method and the
 * upstream's status class: never a connection id, a path or a query.
 */
export interface ProxyMetrics {
  requests: Counter<'provider' | 'method' | 'status_class'>;
  /** `phase`: `upstream` (request sent → response head, summed over a retry), `broker` (the rest up to the head sent back), `total` (until the body is through). */
  duration: Histogram<'provider' | 'phase'>;
  retries: Counter<'provider' | 'outcome'>;
}

export function createProxyMetrics(metrics: Pick<BrokerMetrics, 'registry'>): ProxyMetrics {
  const registers = [metrics.registry];
  return {
    requests: new Counter({
      name: 'oauth_broker_proxy_requests_total',
      help: 'Proxied requests by provider, method and upstream status class (`broker` when the broker answered itself)',
      labelNames: ['provider', 'method', 'status_class'],
      registers,
    }),
    duration: new Histogram({
      name: 'oauth_broker_proxy_duration_seconds',
      help: 'Proxied request time by phase: upstream (to the response head), broker (its own share of the time to the head), total (to the last byte)',
      labelNames: ['provider', 'phase'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    retries: new Counter({
      name: 'oauth_broker_proxy_retries_total',
      help: 'Upstream 401s on oauth2 connections, by what followed: retried, not_replayable (413), no_refresh_token',
      labelNames: ['provider', 'outcome'],
      registers,
    }),
  };
}

export function statusClassOf(status: number | undefined): string {
  return status === undefined ? 'broker' : `${Math.floor(status / 100)}xx`;
}

type Series = { inc(): void } | { observe(value: number): void };

/**
 * The labelled series, looked up once and kept: prom-client hashes the labels on every call
 * otherwise. The keys are bounded (provider ids, six methods, five classes, three phases).
 */
export function seriesCache(metrics: ProxyMetrics): {
  request(provider: string, method: string, statusClass: string): { inc(): void };
  duration(provider: string, phase: 'total' | 'broker' | 'upstream'): { observe(value: number): void };
} {
  const known = new Map<string, Series>();
  const get = <T extends Series>(key: string, make: () => T): T => {
    let series = known.get(key) as T | undefined;
    if (!series) known.set(key, (series = make()));
    return series;
  };
  return {
    request: (provider, method, statusClass) =>
      get(`r ${provider} ${method} ${statusClass}`, () =>
        metrics.requests.labels(provider, method, statusClass),
      ),
    duration: (provider, phase) =>
      get(`d ${provider} ${phase}`, () => metrics.duration.labels(provider, phase)),
  };
}
