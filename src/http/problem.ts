import type { ErrorRequestHandler, Response } from 'express';
import { BrokerError, ERROR_CODES, ErrorCode } from '../errors/broker-error';
import { Logger } from '../observability/logger';
import { createFailureLog } from './failure-log';
import { toBrokerError } from './to-broker-error';

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
  res
    .status(error.status)
    .type('application/problem+json')
    .send(JSON.stringify(problemBody(error, requestIdOf(res))));
}

export function requestIdOf(res: Response): string | undefined {
  return res.locals.requestId as string | undefined;
}

/** The internal listener's renderer: any error as problem+json. */
export function problemErrorHandler(logger: Logger, onRedisError?: () => void): ErrorRequestHandler {
  const logFailure = createFailureLog(logger);
  return (error: unknown, _req, res, _next) => {
    const brokerError = toBrokerError(error);
    if (brokerError.code === 'store_unavailable') onRedisError?.();
    logFailure(res, brokerError);
    if (res.headersSent) return;
    sendProblem(res, brokerError);
  };
}

export function notFoundProblem(code: ErrorCode = 'not_found'): BrokerError {
  return new BrokerError(code, 'No such route.');
}
