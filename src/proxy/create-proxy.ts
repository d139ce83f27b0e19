import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ConnectionService, TokenAnswer } from '../connections/connection-service';
import { BrokerError } from '../errors/broker-error';
import { Logger } from '../observability/logger';
import { Provider } from '../providers/provider-definition';
import { ConfinedTarget, upstreamPathOf } from './confine-path';
import { credentialHeaders } from './credential-headers';
import { forwardableRequestHeaders, forwardableResponseHeaders } from './proxy-headers';
import { ProxyCall, ProxyHooks } from './proxy-hooks';
import { ProxyMetrics, seriesCache, statusClassOf } from './proxy-metrics';
import { ProxyBody, readReplayableBody } from './read-replayable-body';
import { UpstreamAgents, UpstreamExchange, sendUpstream, upstreamBaseOf } from './send-upstream';

export interface ProxyDeps {
  connections: Pick<ConnectionService, 'getToken' | 'read'>;
  /** A token handed to the proxy lives at least this long (REFRESH_MARGIN), as the token API's default. */
  refreshMarginSeconds: number;
  /** PROXY_TIMEOUT in milliseconds: the wait for an upstream's response head. */
  timeoutMs: number;
  agents: UpstreamAgents;
  hooks: ProxyHooks;
  metrics: ProxyMetrics;
  logger: Logger;
}

/** What one proxied request took, for its metrics and log line. */
interface Timing {
  started: number;
  upstreamMs: number;
  headSentAt?: number;
  upstreamStatus?: number;
  retried: boolean;
}

export type Proxy = (call: ProxyCall, target: ConfinedTarget, res: ServerResponse) => Promise<void>;

/**
 * The proxy's pipeline, one step a line (docs/proxy.md):
 * (the caller's grant was checked by the route, before the provider was looked up)
 *   1. api_base_url                     or 404 proxy_not_configured
 *   2. connections.getToken             fresh as the token API makes it (same single flight)
 *   3. hooks.credentialAboutToBeUsed    fail closed, before anything leaves (the audit entry)
 *   4. readReplayableBody               up to 1 MiB kept for a retry, the rest streamed
 *   5. sendUpstream                     credential + api_headers + X-Request-Id, no redirects
 *   6. on 401 (oauth2, refreshable)     one forced refresh, one retry; a streamed body: 413
 *   7. answer                           status, headers (hygiene) and body streamed back
 * A throw before the head is out is answered by the internal app as problem+json.
 */
export function createProxy(deps: ProxyDeps): Proxy {
  const series = seriesCache(deps.metrics);
  return async (call, target, res) => {
    const timing: Timing = { started: performance.now(), upstreamMs: 0, retried: false };
    let exchange: UpstreamExchange | undefined;
    // One listener for both: the metrics and log line, and, when the caller went away before the
    // answer was through, the upstream request (and its body stream) go too.
    res.once('close', () => {
      if (exchange && !res.writableFinished) exchange.request.destroy();
      record(deps, series, call, res, timing);
    });

    const baseUrl = call.provider.api_base_url;
    if (!baseUrl) {
      throw new BrokerError(
        'proxy_not_configured',
        `Provider "${call.provider.id}" has no api_base_url: set ${call.provider.env_prefix}_API_BASE_URL or the catalogue's api_base_url.`,
      );
    }
    const base = upstreamBaseOf(baseUrl);
    const token = await deps.connections.getToken(call.provider, call.connectionId, {
      minValiditySeconds: deps.refreshMarginSeconds,
      forceRefresh: false,
    });
    await deps.hooks.credentialAboutToBeUsed({ ...call, authMode: token.auth_mode });
    // Most proxied requests have no body: no promise to wait for then.
    const read = readReplayableBody(call.req);
    const body = 'then' in read ? await read : read;
    const path = upstreamPathOf(base.pathname, target);

    const send = async (answer: TokenAnswer): Promise<UpstreamExchange> => {
      const sent = performance.now();
      try {
        return await sendUpstream({
          base,
          path,
          method: call.method,
          headers: upstreamHeaders(call, answer),
          body,
          timeoutMs: deps.timeoutMs,
          agents: deps.agents,
        });
      } finally {
        timing.upstreamMs += performance.now() - sent;
      }
    };
    exchange = await send(token);
    if (res.destroyed) exchange.request.destroy();

    if (exchange.response.statusCode === 401 && token.auth_mode === 'oauth2') {
      const fresh = await refreshAfter401(deps, call, token, body, exchange);
      if (fresh) {
        exchange.response.resume();
        timing.retried = true;
        exchange = await send(fresh);
        if (res.destroyed) exchange.request.destroy();
      }
    }
    answer(res, exchange, timing);
  };
}

/**
 * RFC 6750 §3.1: a 401 may mean the token was revoked or expired early. One forced refresh and one
 * retry, when the connection has a refresh token and the body can be sent again; never twice. A
 * body streamed on cannot be: 413 `proxy_body_too_large` rather than a partial or second upload.
 * When another request refreshed meanwhile, its token is used without another refresh.
 */
async function refreshAfter401(
  deps: ProxyDeps,
  call: ProxyCall,
  used: TokenAnswer & { auth_mode: 'oauth2' },
  body: ProxyBody,
  exchange: UpstreamExchange,
): Promise<TokenAnswer | undefined> {
  const record = await deps.connections.read(call.provider.id, call.connectionId);
  if (!record.refreshable) {
    deps.metrics.retries.labels(call.provider.id, 'no_refresh_token').inc();
    return undefined;
  }
  if (body.kind === 'streamed') {
    deps.metrics.retries.labels(call.provider.id, 'not_replayable').inc();
    exchange.response.resume();
    body.rest.unpipe(exchange.request);
    exchange.request.destroy();
    throw new BrokerError(
      'proxy_body_too_large',
      'The provider refused the token (401); the body, larger than 1 MiB, was streamed and is not sent twice. Retry the request.',
    );
  }
  deps.metrics.retries.labels(call.provider.id, 'retried').inc();
  const options = { minValiditySeconds: deps.refreshMarginSeconds, forceRefresh: false };
  const current = await deps.connections.getToken(call.provider, call.connectionId, options);
  if (current.auth_mode === 'oauth2' && current.access_token !== used.access_token) return current;
  return deps.connections.getToken(call.provider, call.connectionId, { ...options, forceRefresh: true });
}

/** What an oauth2 credential replaces of the caller's fields (lower case). */
const AUTHORIZATION: ReadonlySet<string> = new Set(['authorization']);

/** A provider's `api_headers` as [name, lower-case name, value], made once per provider. */
const apiHeadersOf = (() => {
  const known = new WeakMap<Provider, Array<[string, string, string]>>();
  return (provider: Provider): Array<[string, string, string]> => {
    let entries = known.get(provider);
    if (!entries) {
      entries = Object.entries(provider.api_headers ?? {}).map(([name, value]) => [
        name,
        name.toLowerCase(),
        value,
      ]);
      known.set(provider, entries);
    }
    return entries;
  };
})();

/**
 * The caller's headers after hygiene, then the broker's: credential, `api_headers`, request id;
 * flat (name, value, …), the form Node's client takes without copying.
 */
function upstreamHeaders(call: ProxyCall, token: TokenAnswer): string[] {
  const credential = credentialHeaders(token);
  const replaced =
    token.auth_mode === 'oauth2'
      ? AUTHORIZATION
      : new Set(Object.keys(credential).map((name) => name.toLowerCase()));
  const apiHeaders = apiHeadersOf(call.provider);
  const headers: string[] = [];
  const sent = new Set<string>();
  for (const [name, value] of forwardableRequestHeaders(call.req.rawHeaders, replaced)) {
    headers.push(name, value);
    if (apiHeaders.length > 0) sent.add(name.toLowerCase());
  }
  // A caller's own value of an api_headers field (say another API version) wins over the catalogue's.
  for (const [name, lower, value] of apiHeaders)
    if (!sent.has(lower) && !replaced.has(lower)) headers.push(name, value);
  for (const name in credential) headers.push(name, credential[name]!);
  headers.push('X-Request-Id', call.requestId);
  return headers;
}

/** The upstream's answer as it came: status, reason, headers after hygiene, body streamed. */
function answer(res: ServerResponse, exchange: UpstreamExchange, timing: Timing): void {
  const { response } = exchange;
  timing.upstreamStatus = response.statusCode;
  res.statusCode = response.statusCode ?? 502;
  if (response.statusMessage) res.statusMessage = response.statusMessage;
  for (const [name, values] of forwardableResponseHeaders(response.rawHeaders))
    res.setHeader(name, values.length === 1 ? values[0]! : values);
  timing.headSentAt = performance.now();
  if (response.complete) {
    // The whole answer is in (a small body comes in the same read as its head): head and body go
    // out in one write, without a pipe's listeners and ticks for a body already here. Reading it
    // to its end also hands the upstream socket back to the keep-alive pool.
    const data = response.read() as Buffer | null;
    if (data === null) res.end();
    else res.end(data);
    return;
  }
  // A body of known length goes out with the head in one write (one syscall less per request); a
  // stream of unknown length (events, long polls) shows its head at once, before its first bytes.
  if (response.headers['content-length'] === undefined) res.flushHeaders();
  response.on('error', () => res.destroy());
  // A body cut short upstream is cut short here too: the caller must not take it for whole.
  response.on('aborted', () => res.destroy());
  response.pipe(res);
}

function record(
  deps: ProxyDeps,
  series: ReturnType<typeof seriesCache>,
  call: ProxyCall,
  res: ServerResponse,
  timing: Timing,
): void {
  const now = performance.now();
  const provider = call.provider.id;
  const upstreamStatus = timing.headSentAt === undefined ? undefined : timing.upstreamStatus;
  series.request(provider, call.method, statusClassOf(upstreamStatus)).inc();
  const totalMs = now - timing.started;
  const brokerMs = (timing.headSentAt ?? now) - timing.started - timing.upstreamMs;
  series.duration(provider, 'total').observe(totalMs / 1000);
  series.duration(provider, 'broker').observe(brokerMs / 1000);
  if (timing.upstreamMs > 0) series.duration(provider, 'upstream').observe(timing.upstreamMs / 1000);
  if (!deps.logger.isLevelEnabled('info')) return;
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  deps.logger.info(
    {
      req_id: call.requestId,
      provider,
      connection_id: call.connectionId,
      method: call.method,
      path: call.path,
      status: res.statusCode,
      upstream_status: upstreamStatus ?? null,
      retried: timing.retried,
      complete: res.writableFinished,
      duration_ms: round(totalMs),
      upstream_ms: round(timing.upstreamMs),
      broker_ms: round(brokerMs),
    },
    'proxied',
  );
}
