import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { PAGE_CSS_HASH } from '../http/pages/render-page';

/** The public listener's page policy for the demo's own pages: nothing loads, nothing frames them. */
export function pageSecurityHeaders(): RequestHandler {
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: [PAGE_CSS_HASH],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: false,
  });
  return (req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    headers(req, res, next);
  };
}
