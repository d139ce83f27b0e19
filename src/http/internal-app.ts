import type { IncomingMessage, RequestListener } from 'node:http';
import express, { Express } from 'express';
import { RedisClient } from '../connections/redis-client';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';
import { AuthFailureHandler, requireInternalKey } from './internal-auth';
import { buildOpenApiDocument } from './openapi';
import { notFoundProblem, problemErrorHandler } from './problem';
import { requestContext, requestTracker } from './request-context';
import { tokenFastPath } from './routes/token-route';
import { InternalRoutesDeps, allow, createInternalRoutes } from './routes/internal-routes';
import { ProxyRouteDeps, proxyFastPath, registerProxyRoute } from './routes/proxy-route';

export interface InternalAppDeps extends InternalRoutesDeps {
  /** The proxy (src/proxy/create-proxy.ts); without it /internal/proxy/* is an unknown path. */
  proxy?: ProxyRouteDeps['proxy'];
  redis: RedisClient;
  logger: Logger;
  metrics: BrokerMetrics;
  /** Per-IP limit on failed authentications; none in tests that do not ask for it. */
  authFailureLimit?: AuthFailureHandler;
}

/** A failure of the fast path's work, handed to the app to answer (see createInternalHandler). */
const HANDED_OVER = Symbol('token fast path failure');
type HandedOver = IncomingMessage & { [HANDED_OVER]?: { error: unknown } };

/**
 * The internal listener's request handler: the token API's fast path (src/http/routes/token-route.ts)
 * in front of the Express app, which answers everything the fast path leaves (other routes, other
 * spellings, bad keys, bad input) and the failures of the fast path's work, through its one error
 * handler.
 */
export function createInternalHandler(deps: InternalAppDeps): RequestListener {
  const app = createInternalApp(deps);
  const track = requestTracker('internal', deps.logger, deps.metrics);
  const fastPath = tokenFastPath({ ...deps, track });
  const proxyPath = deps.proxy
    ? proxyFastPath({ registry: deps.registry, proxy: deps.proxy, access: deps.access, track })
    : undefined;
  return (req, res) => {
    const fail = (error: unknown): void => {
      (req as HandedOver)[HANDED_OVER] = { error };
      app(req, res);
    };
    const answered = fastPath(req, res, fail) || (proxyPath?.(req, res, fail) ?? false);
    if (!answered) app(req, res);
  };
}

/**
 * The app for the app's own services: the token API behind a key (each route checking the key's
 * grant, docs/least-privilege.md), `/readyz` and `/metrics`.
 * Never reachable from the public listener.
 */
function createInternalApp(deps: InternalAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const openapi = JSON.stringify(buildOpenApiDocument());

  // A failure of the fast path's work goes straight to the error handler: that request was
  // tracked and given its headers already.
  app.use((req, _res, next) => {
    const handedOver = (req as HandedOver)[HANDED_OVER];
    if (!handedOver) return next();
    // Never a falsy value or a string such as 'route', which Express would not treat as an error.
    const { error } = handedOver;
    next(error instanceof Error ? error : new Error('the token fast path failed', { cause: error }));
  });
  // Also sets X-Content-Type-Options: nosniff (one middleware less per request).
  app.use(requestContext('internal', deps.logger, deps.metrics));

  app.get('/readyz', async (_req, res) => {
    try {
      const pong = await Promise.race([
        deps.redis.ping(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('ping timed out')), 1500).unref(),
        ),
      ]);
      if (pong !== 'PONG') throw new Error('unexpected PING answer');
      res.json({ status: 'ready', redis: 'ok' });
    } catch {
      deps.metrics.redisErrors.inc();
      res.status(503).json({ status: 'unavailable', redis: 'unreachable' });
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  // Everything below needs the key, unknown paths too (401 before 404: a caller without a key
  // learns nothing of what exists). A mount path (`app.use('/internal', …)`) would cost a prefix
  // trim and restore on every request, and would have to match the router's case-insensitive paths.
  app.use(requireInternalKey(deps.access, deps.authFailureLimit));
  createInternalRoutes(deps, app);
  if (deps.proxy)
    registerProxyRoute({ registry: deps.registry, proxy: deps.proxy, access: deps.access }, app);
  app.get('/internal/openapi.json', (req, res) => {
    allow(deps.access, req, res, 'admin');
    res.type('application/json').send(openapi);
  });

  app.use((_req, _res, next) => next(notFoundProblem()));
  app.use(problemErrorHandler(deps.logger, () => deps.metrics.redisErrors.inc()));
  return app;
}
