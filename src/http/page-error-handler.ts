import type { ErrorRequestHandler } from 'express';
import { Logger } from '../observability/logger';
import { createFailureLog } from './failure-log';
import { failurePage } from './pages/connect-pages';
import { sendPage } from './pages/send-page';
import { toBrokerError } from './to-broker-error';

/**
 * The public listener's renderer: any error as a plain page for the browser, never a stack trace.
 * The store being away is 503 with `Retry-After`, counted through `onRedisError` like the
 * internal listener's.
 */
export function pageErrorHandler(logger: Logger, onRedisError?: () => void): ErrorRequestHandler {
  const logFailure = createFailureLog(logger, 'browser request failed');
  return (error: unknown, _req, res, _next) => {
    const brokerError = toBrokerError(error);
    const storeDown = brokerError.code === 'store_unavailable';
    if (storeDown) onRedisError?.();
    logFailure(res, brokerError);
    if (res.headersSent) return;
    if (storeDown || brokerError.code === 'rate_limited') res.setHeader('Retry-After', '1');
    const page =
      brokerError.status < 500
        ? brokerError.code === 'rate_limited'
          ? 'rate_limited'
          : 'invalid_form'
        : storeDown
          ? 'store_unavailable'
          : 'provider_error';
    sendPage(res, brokerError.status, failurePage(page));
  };
}
