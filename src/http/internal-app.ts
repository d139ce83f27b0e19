import express, { Express } from 'express';
import { RedisClient } from '../connections/redis-client';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';
import { AuthFailureHandler, internalKeyMatcher, requireInternalKey } from './internal-auth';
import { buildOpenApiDocument } from './openapi';
import { notFoundProblem, problemErrorHandler } from './problem';
import { requestContext, requestTracker } from './request-context';
import { tokenFastPath } from './routes/token-route';
import { InternalRoutesDeps, createInternalRoutes } from './routes/internal-routes';

export interface InternalAppDeps extends InternalRoutesDeps {
  internalApiKeys: string[];
  redis: RedisClient;
  logger: Logger;
  metrics: BrokerMetrics;
  /** Per-IP limit on failed authentications; none in tests that do not ask for it. */
  authFailureLimit?: AuthFailureHandler;
}

/**
 * The listener for the app's own services: the token API behind a key, `/readyz` and
 * `/metrics`. Never reachable from the public listener.
 */
export function createInternalApp(deps: InternalAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const openapi = JSON.stringify(buildOpenApiDocument());

  // First, ahead of every other layer: authenticated, well-formed token requests (most traffic).
  // It passes anything else on, untouched, to the layers below.
  app.use(
    tokenFastPath({
      ...deps,
      keyMatches: internalKeyMatcher(deps.internalApiKeys),
      track: requestTracker('internal', deps.logger, deps.metrics),
    }),
  );
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
  app.use(requireInternalKey(deps.internalApiKeys, deps.authFailureLimit));
  createInternalRoutes(deps, app);
  app.get('/internal/openapi.json', (_req, res) => {
    res.type('application/json').send(openapi);
  });

  app.use((_req, _res, next) => next(notFoundProblem()));
  app.use(problemErrorHandler(deps.logger, () => deps.metrics.redisErrors.inc()));
  return app;
}
