import { BrokerError } from '../errors/broker-error';
import { CONNECTION_ID_PATTERN } from './schemas/fields';

/**
 * Checks of path and query input; each failure is a 400 invalid_request naming the field. (Bodies
 * are checked against their schemas, src/http/schemas/.)
 */
export function invalid(detail: string): BrokerError {
  return new BrokerError('invalid_request', detail);
}

export function requireConnectionId(value: unknown, field = 'connection_id'): string {
  if (typeof value !== 'string' || !CONNECTION_ID_PATTERN.test(value)) {
    throw invalid(`\`${field}\` must be 1-200 characters of A-Za-z0-9._:@-`);
  }
  return value;
}

/** A query parameter that must be a single string, if present (no arrays, no objects). */
export function optionalQueryString(
  query: Record<string, unknown>,
  name: string,
  maxLength = 2048,
): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > maxLength)
    throw invalid(`\`${name}\` must be given once, as a string`);
  return value;
}

export function optionalInteger(
  query: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const value = optionalQueryString(query, name, 20);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw invalid(`\`${name}\` must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

export function optionalBoolean(query: Record<string, unknown>, name: string): boolean | undefined {
  const value = optionalQueryString(query, name, 10);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`\`${name}\` must be true or false`);
  return value === 'true';
}
