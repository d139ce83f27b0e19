import type { ErrorRequestHandler, Request, Response } from 'express';
import { BrokerError, ERROR_CODES, ErrorCode, isBrokerError } from '../errors/broker-error';
import { Logger, errorForLog } from '../observability/logger';

export const PROBLEM_TYPE_BASE = 'urn:oauth-broker:problem:';

/** RFC 9457 problem details, with the broker's stable `code`. */
export function problemBody(error: BrokerError, requestId?: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: ERROR_CODES[error.code].title,
    status: error.status,
    detail: error.detail,
    code: error.code,
  };
  if (error.retryable !== undefined) body.retryable = error.retryable;
  if (error.extra) Object.assign(body, error.extra);
  if (requestId) body.request_id = requestId;
  return body;
}

export function sendProblem(res: Response, error: BrokerError): void {
  if (error.code === 'store_unavailable' || error.code === 'rate_limited') res.setHeader('Retry-After', '1');
  // The broker's own refusals say so in a header: behind the proxy a caller tells them apart from
  // the provider's answers (which never carry it: src/proxy/proxy-headers.ts drops it).
  res.setHeader('Broker-Error', error.code);
  res
    .status(error.status)
    .type('application/problem+json')
    .send(JSON.stringify(problemBody(error, requestIdOf(res))));
}

export function requestIdOf(res: Response): string | undefined {
  return res.locals.requestId as string | undefined;
}

/**
 * Turns anything thrown into a BrokerError: known ones as they are, body-parser's into 4xx,
 * Redis failures into 503, the rest into a generic 500 whose detail stays in the log.
 */
export function toBrokerError(error: unknown): BrokerError {
  if (isBrokerError(error)) return error;
  const e = error as { type?: string; status?: number; name?: string; message?: string; code?: string };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    if (e.status === 413) return new BrokerError('payload_too_large', 'The request body is too large.');
    if (e.status === 415)
      return new BrokerError('unsupported_media_type', 'Unsupported content encoding or charset.');
    if (e.type === 'entity.parse.failed')
      return new BrokerError('invalid_request', 'The body is not valid JSON.');
    return new BrokerError('invalid_request', 'The request is malformed.');
  }
  if (isRedisUnavailable(error))
    return new BrokerError('store_unavailable', 'The store (Redis) cannot be reached; try again shortly.', {
      cause: error,
    });
  return new BrokerError(
    'internal_error',
    'An unexpected error occurred; the request id links it to the log.',
    { cause: error },
  );
}

/** ioredis failures while Redis is away: closed connection, no offline queue, timeouts, cluster down. */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const name = error.name;
  const message = error.message ?? '';
  return (
    name === 'MaxRetriesPerRequestError' ||
    name === 'ClusterAllFailedError' ||
    /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|CLUSTERDOWN|TRYAGAIN|LOADING|READONLY|MASTERDOWN|Failed to refresh slots cache|None of startup nodes is available|All sentinels are unreachable|enableOfflineQueue/.test(
      message,
    )
  );
}

let lastStoreWarning = 0;

/**
 * 5xx answers reach the log. While Redis is away every request fails the same way: one warning a
 * second says so (the metric counts them all) instead of a line per request.
 */
export function logFailure(logger: Logger, req: Request, error: BrokerError): void {
  if (error.status < 500) return;
  const line = {
    req_id: req.res?.locals.requestId,
    code: error.code,
    err: errorForLog(error.cause ?? error),
  };
  if (error.code === 'store_unavailable') {
    const now = Date.now();
    if (now - lastStoreWarning < 1000) return;
    lastStoreWarning = now;
    logger.warn(line, 'request failed: store unavailable (further ones this second not logged)');
    return;
  }
  logger.error(line, 'request failed');
}

/** The JSON error handler of the internal listener. */
export function problemErrorHandler(logger: Logger, onRedisError?: () => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const brokerError = toBrokerError(error);
    if (brokerError.code === 'store_unavailable') onRedisError?.();
    logFailure(logger, req, brokerError);
    if (res.headersSent) return;
    sendProblem(res, brokerError);
  };
}

export function notFoundProblem(code: ErrorCode = 'not_found'): BrokerError {
  return new BrokerError(code, 'No such route.');
}
