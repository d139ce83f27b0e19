import { OwnerChange } from '../connections/connection-owner';

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
