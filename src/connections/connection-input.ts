import { BrokerError } from '../errors/broker-error';

/**
 * The input rules of a connection's names, one place for every way in (the internal API and the
 * CLI): connection and end-user ids, tag keys and values (see docs/end-users-and-tags.md). Each
 * failure is a BrokerError invalid_request naming the field.
 */
export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,200}$/;
export const MAX_TAGS = 10;
export const TAG_KEY_PATTERN = /^[a-z0-9_.-]{1,64}$/;
export const MAX_TAG_VALUE = 256;

export function requireConnectionId(value: unknown, field = 'connection_id'): string {
  if (typeof value !== 'string' || !CONNECTION_ID_PATTERN.test(value)) {
    throw new BrokerError('invalid_request', `\`${field}\` must be 1-200 characters of A-Za-z0-9._:@-`);
  }
  return value;
}

/**
 * A listing's `tag` filter, `key:value` (the first colon splits: keys hold none), given once or
 * repeated; all must match.
 */
export function parseTagFilters(value: unknown): Array<[string, string]> {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > MAX_TAGS)
    throw new BrokerError('invalid_request', `\`tag\` may be given at most ${MAX_TAGS} times`);
  return list.map((item) => {
    if (typeof item !== 'string') throw new BrokerError('invalid_request', '`tag` must be `key:value`');
    const i = item.indexOf(':');
    const key = i < 0 ? '' : item.slice(0, i);
    const text = item.slice(i + 1);
    if (!TAG_KEY_PATTERN.test(key) || text.length > MAX_TAG_VALUE)
      throw new BrokerError(
        'invalid_request',
        '`tag` must be `key:value`, the key 1-64 characters of a-z0-9_.-',
      );
    return [key, text];
  });
}
