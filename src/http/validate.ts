import { BrokerError } from '../errors/broker-error';

/** Checks of request input; each failure is a 400 invalid_request naming the field. */
const PROVIDER_ID_PATTERN = /^[a-z0-9-]{1,64}$/;

export function invalid(detail: string): BrokerError {
  return new BrokerError('invalid_request', detail);
}

export function looksLikeProviderId(value: unknown): value is string {
  return typeof value === 'string' && PROVIDER_ID_PATTERN.test(value);
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

export function requireObjectBody(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw invalid('The body must be a JSON object (Content-Type: application/json).');
  return body as Record<string, unknown>;
}

export function rejectUnknownFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  // Field names are the caller's input: shown only as word characters, so nothing comes back as markup.
  if (unknown.length > 0)
    throw invalid(
      `Unknown field ${unknown.map((k) => `\`${k.slice(0, 40).replace(/[^\w.-]/g, '?')}\``).join(', ')}.`,
    );
}

export function optionalScopes(value: unknown, field = 'scopes'): string[] | undefined {
  if (value === undefined) return undefined;
  if (
    !Array.isArray(value) ||
    value.length > 100 ||
    !value.every((s) => typeof s === 'string' && /^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/.test(s))
  ) {
    throw invalid(
      `\`${field}\` must be an array of at most 100 scope strings (RFC 6749 §3.3 characters, no spaces)`,
    );
  }
  return value as string[];
}

export function optionalString(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw invalid(`\`${field}\` must be a non-empty string of at most ${maxLength} characters`);
  }
  return value;
}
