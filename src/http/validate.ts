import { BrokerError } from '../errors/broker-error';

/**
 * Checks of path parameters; each failure is a 400 invalid_request naming the field. (Bodies and
 * query strings are checked against their schemas, src/http/schemas/.)
 */
export { requireConnectionId } from '../connections/connection-input';

export function invalid(detail: string): BrokerError {
  return new BrokerError('invalid_request', detail);
}

/**
 * A query string's parameters but those given empty: docs/api.md writes a listing as
 * `?provider=&cursor=&limit=`, where an empty value means "not given".
 */
export function givenParameters(query: unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(query as Record<string, unknown>).filter(([, v]) => v !== ''));
}
