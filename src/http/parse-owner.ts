import { OwnerChange } from '../connections/connection-owner';
import { tagFiltersProblem, tagPairs } from './schemas/queries';
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
 * repeated; all must match. The rule of the API's query (src/http/schemas/queries.ts), for the CLI.
 */
export function parseTagFilters(value: unknown): Array<[string, string]> {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const problem = tagFiltersProblem(list);
  if (problem !== undefined) throw invalid(problem);
  return tagPairs(list as string[]);
}
