import { OwnerChange } from '../connections/connection-owner';
import { MAX_TAGS, MAX_TAG_VALUE, TAG_KEY_PATTERN } from './schemas/owner';
import { invalid } from './validate';

/**
 * The owner fields of a checked connect session, import or PATCH body (src/http/schemas/owner.ts,
 * docs/end-users-and-tags.md) as a change: a field left out is not named, so it keeps what the
 * connection holds.
 */
export function ownerChange(fields: OwnerChange): OwnerChange {
  const change: OwnerChange = {};
  if (fields.end_user !== undefined) change.end_user = fields.end_user;
  if (fields.tags !== undefined) change.tags = fields.tags;
  return change;
}

/**
 * A listing's `tag` filter, `key:value` (the first colon splits: keys hold none), given once or
 * repeated; all must match.
 */
export function parseTagFilters(value: unknown): Array<[string, string]> {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > MAX_TAGS) throw invalid(`\`tag\` may be given at most ${MAX_TAGS} times`);
  return list.map((item) => {
    if (typeof item !== 'string') throw invalid('`tag` must be `key:value`');
    const i = item.indexOf(':');
    const key = i < 0 ? '' : item.slice(0, i);
    const text = item.slice(i + 1);
    if (!TAG_KEY_PATTERN.test(key) || text.length > MAX_TAG_VALUE)
      throw invalid('`tag` must be `key:value`, the key 1-64 characters of a-z0-9_.-');
    return [key, text];
  });
}
