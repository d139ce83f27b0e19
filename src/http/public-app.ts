import express, { Express, RequestHandler } from 'express';
import helmet from 'helmet';
import { isHttpsUrl } from '../config/is-https-url';
import { BrokerMetrics } from '../observability/metrics';
import { Logger } from '../observability/logger';
import { notFoundPage } from './pages/connect-pages';
import { PAGE_CSS_HASH } from './pages/render-page';
import { requestContext } from './request-context';
import { pageErrorHandler } from './page-error-handler';
import { sendPage } from './pages/send-page';
import { notFoundProblem, sendProblem } from './problem';
import { ConnectRoutesDeps, createConnectRoutes } from './routes/connect-routes';
import { markPublicRequestsSecure } from './session';

export interface PublicAppDeps extends ConnectRoutesDeps {
  publicUrl: string;
  allowedReturnUrls: string[];
  sessionMiddleware: RequestHandler;
  /** Per-IP limit on the browser routes; none in tests that do not ask for it. */
  rateLimit?: RequestHandler;
  logger: Logger;
  metrics: BrokerMetrics;
}

/**
 * The internet-facing listener: the connect flow and `/healthz`, nothing else. Its pages load
 * nothing from anywhere (CSP default-src 'none'), are never cached and send no Referer, so a
 * code or state in the address bar goes nowhere (RFC 9700 §4.2.4).
 */
export function createPublicApp(deps: PublicAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const secure = isHttpsUrl(deps.publicUrl);
  // A form's redirect to return_to is subject to form-action in browsers that enforce it on redirects.
  const returnOrigins = [...new Set(deps.allowedReturnUrls.map((u) => new URL(u).origin))];

  app.use(requestContext('public', deps.logger, deps.metrics));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: [PAGE_CSS_HASH],
          formAction: ["'self'", ...returnOrigins],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: secure ? { maxAge: 31536000, includeSubDomains: false } : false,
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const browser = express.Router();
  browser.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    next();
  });
  if (deps.rateLimit) browser.use(deps.rateLimit);
  if (secure) browser.use(markPublicRequestsSecure());
  browser.use(deps.sessionMiddleware);
  browser.use(createConnectRoutes(deps));
  // Sessions exist only on the flow's routes: /healthz and unknown paths never touch Redis.
  app.use((req, res, next) => {
    if (req.path.startsWith('/auth/') || req.path.startsWith('/callback/')) return browser(req, res, next);
    next();
  });

  app.use((req, res) => {
    if (req.accepts(['html', 'json']) === 'html') {
      return sendPage(res, 404, notFoundPage());
    }
    sendProblem(res, notFoundProblem());
  });
  app.use(pageErrorHandler(deps.logger, () => deps.metrics.redisErrors.inc()));
  return app;
}
