import type { Response } from 'express';
import { BrokerError } from '../errors/broker-error';
import { Logger, errorForLog } from '../observability/logger';

export type FailureLog = (res: Response, error: BrokerError) => void;

/**
 * Logs the 5xx answers of one listener. While Redis is away every request fails the same way: one
 * warning a second says so (the metric counts them all) instead of a line per request. The
 * throttle belongs to the returned function, not to the module.
 */
export function createFailureLog(logger: Logger, message = 'request failed'): FailureLog {
  let lastStoreWarning = 0;
  return (res, error) => {
    if (error.status < 500) return;
    const line = {
      req_id: res.locals.requestId as string | undefined,
      code: error.code,
      err: errorForLog(error.cause ?? error),
    };
    if (error.code === 'store_unavailable') {
      const now = Date.now();
      if (now - lastStoreWarning < 1000) return;
      lastStoreWarning = now;
      logger.warn(line, `${message}: store unavailable (further ones this second not logged)`);
      return;
    }
    logger.error(line, message);
  };
}
