import { StoreUnavailableError } from '../connections/store-unavailable-error';
import { BrokerError, isBrokerError } from '../errors/broker-error';

/**
 * The one mapping from anything thrown to the BrokerError a listener answers: broker errors as
 * they are, body-parser's refusals as 4xx, the store being away (a `StoreUnavailableError`, typed
 * at the Redis boundary) as 503, and the rest as a generic 500 whose detail stays in the log.
 */
export function toBrokerError(error: unknown): BrokerError {
  if (isBrokerError(error)) return error;
  if (error instanceof StoreUnavailableError)
    return new BrokerError('store_unavailable', 'The store (Redis) cannot be reached; try again shortly.', {
      cause: error.cause,
    });
  const e = error as { type?: string; status?: number } | null;
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    if (e.status === 413) return new BrokerError('payload_too_large', 'The request body is too large.');
    if (e.status === 415)
      return new BrokerError('unsupported_media_type', 'Unsupported content encoding or charset.');
    if (e.status === 429) return new BrokerError('rate_limited', 'Too many requests.');
    if (e.type === 'entity.parse.failed')
      return new BrokerError('invalid_request', 'The body is not valid JSON.');
    return new BrokerError('invalid_request', 'The request is malformed.');
  }
  return new BrokerError(
    'internal_error',
    'An unexpected error occurred; the request id links it to the log.',
    { cause: error },
  );
}
