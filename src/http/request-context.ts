import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A request id (the caller's `X-Request-Id` when it is sane, else a new one) echoed back and put
 * on the log line, `X-Content-Type-Options: nosniff`, plus the request metrics. The log line has
 * the route pattern, never the query (a callback's query carries `code` and `state`) nor any
 * header or body.
 */
export function requestContext(
  listener: 'public' | 'internal',
  logger: Logger,
  metrics: BrokerMetrics,
): RequestHandler {
  const track = requestTracker(listener, logger, metrics);
  return (req, res, next) => {
    setContextHeaders(res, track(req, res));
    next();
  };
}

/** The headers every answer carries; a handler writing its head in one go passes them itself. */
export function contextHeaders(requestId: string): Record<string, string> {
  // No listener answers anything a browser should sniff (the public one's helmet says so too).
  return { 'X-Request-Id': requestId, 'X-Content-Type-Options': 'nosniff' };
}

/** The same headers set one by one (every request the Express apps answer: no object each time). */
export function setContextHeaders(res: ServerResponse, requestId: string): void {
  res.setHeader('X-Request-Id', requestId);
  res.setHeader('X-Content-Type-Options', 'nosniff');
}

/** Node's request as Express extends it, where it went through Express's router. */
type TrackedRequest = IncomingMessage & Partial<Pick<Request, 'route' | 'baseUrl'>>;
/** The response; `locals` is Express's, made here when a handler answers ahead of Express. */
type TrackedResponse = ServerResponse & { locals?: Record<string, unknown> };

export type RequestTracker = (req: TrackedRequest, res: TrackedResponse, route?: string) => string;

/**
 * What `requestContext` does but the headers, for a handler that answers ahead of Express (the
 * token API's fast path) and names its route itself; otherwise the route is the one the router
 * matched. Answers the request id, also kept in `res.locals.requestId` (where Express's error
 * handling looks for it, should the request be handed to the app).
 */
export function requestTracker(
  listener: 'public' | 'internal',
  logger: Logger,
  metrics: BrokerMetrics,
): RequestTracker {
  const series = requestSeries(listener, metrics);
  return (req, res, knownRoute) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    (res.locals ??= Object.create(null) as Record<string, unknown>).requestId = id;
    const started = performance.now();
    res.on('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      const route =
        knownRoute ?? (req.route?.path ? `${req.baseUrl ?? ''}${String(req.route.path)}` : 'unmatched');
      const method = req.method ?? '';
      const { requests, duration } = series(route, method, res.statusCode);
      requests.inc();
      duration.observe(seconds);
      const quiet = listener === 'internal' && res.statusCode < 400;
      // The token API's successful answers log at debug: skip building their line when that is off.
      if (quiet && !logger.isLevelEnabled('debug')) return;
      const line = {
        req_id: id,
        method,
        route,
        status: res.statusCode,
        duration_ms: Math.round(seconds * 10000) / 10,
      };
      if (quiet) logger.debug(line, 'request');
      else logger.info(line, 'request');
    });
    return id;
  };
}

interface RequestSeries {
  requests: { inc(): void };
  duration: { observe(value: number): void };
}

/**
 * The labelled series of one route, method and status, looked up once and kept: prom-client hashes
 * a label object on every `inc`/`observe` call, which cost more than the rest of this middleware.
 * The keys are bounded (route patterns or "unmatched", the methods Node's parser accepts, status
 * codes), so the map is too.
 */
function requestSeries(
  listener: 'public' | 'internal',
  metrics: BrokerMetrics,
): (route: string, method: string, status: number) => RequestSeries {
  const known = new Map<string, RequestSeries>();
  return (route, method, status) => {
    const key = `${method} ${status} ${route}`;
    let entry = known.get(key);
    if (!entry) {
      entry = {
        requests: metrics.httpRequests.labels({ listener, route, method, status: String(status) }),
        duration: metrics.httpDuration.labels({ listener, route, method }),
      };
      known.set(key, entry);
    }
    return entry;
  };
}
