import { BrokerError } from '../errors/broker-error';

/**
 * The input rules of a connection's names, one place for every way in (the internal API's schemas
 * in src/http/schemas/, and the CLI): connection and end-user ids, tag keys and values, the
 * listing's tag filter (see docs/end-users-and-tags.md). Each failure is a BrokerError
 * invalid_request naming the field.
 */
export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,200}$/;
export const MAX_TAGS = 10;
export const TAG_KEY_PATTERN = /^[a-z0-9_.-]{1,64}$/;
export const MAX_TAG_VALUE = 256;

export function connectionIdMessage(field: string): string {
  return `\`${field}\` must be 1-200 characters of A-Za-z0-9._:@-`;
}

export function requireConnectionId(value: unknown, field = 'connection_id'): string {
  if (typeof value !== 'string' || !CONNECTION_ID_PATTERN.test(value))
    throw new BrokerError('invalid_request', connectionIdMessage(field));
  return value;
}

/** What is wrong with a listing's `tag` filters (`key:value`, the first colon splits), if anything. */
export function tagFiltersProblem(list: readonly unknown[]): string | undefined {
  if (list.length > MAX_TAGS) return `\`tag\` may be given at most ${MAX_TAGS} times`;
  for (const item of list) {
    if (typeof item !== 'string') return '`tag` must be `key:value`';
    const i = item.indexOf(':');
    if (!TAG_KEY_PATTERN.test(i < 0 ? '' : item.slice(0, i)) || item.length - i - 1 > MAX_TAG_VALUE)
      return '`tag` must be `key:value`, the key 1-64 characters of a-z0-9_.-';
  }
  return undefined;
}

export function tagPairs(list: readonly string[]): Array<[string, string]> {
  return list.map((item) => [item.slice(0, item.indexOf(':')), item.slice(item.indexOf(':') + 1)]);
}

/** A listing's `tag` filter, given once or repeated; all must match. */
export function parseTagFilters(value: unknown): Array<[string, string]> {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const problem = tagFiltersProblem(list);
  if (problem !== undefined) throw new BrokerError('invalid_request', problem);
  return tagPairs(list as string[]);
}
