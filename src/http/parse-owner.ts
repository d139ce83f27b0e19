import { EndUser, OwnerChange, Tags } from '../connections/connection-owner';
import {
  CONNECTION_ID_PATTERN,
  MAX_TAGS,
  MAX_TAG_VALUE,
  TAG_KEY_PATTERN,
} from '../connections/connection-input';
import { invalid, rejectUnknownFields } from './validate';

const END_USER_FIELDS = ['id', 'email', 'display_name', 'organization_id'] as const;
const MAX_END_USER_TEXT = 320; // an e-mail address may be 254 characters (RFC 5321 §4.5.3.1.3)

/**
 * The owner fields of a connect session, an import or a PATCH body (see docs/end-users-and-tags.md):
 * a field left out is not named; `null` clears it. Each failure is a 400 naming the field.
 */
export function parseOwnerChange(body: Record<string, unknown>): OwnerChange {
  const change: OwnerChange = {};
  if (body.end_user !== undefined)
    change.end_user = body.end_user === null ? null : parseEndUser(body.end_user);
  if (body.tags !== undefined) change.tags = body.tags === null ? {} : parseTags(body.tags);
  return change;
}

export function parseEndUser(value: unknown): EndUser {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw invalid('`end_user` must be an object with an `id`');
  const source = value as Record<string, unknown>;
  try {
    rejectUnknownFields(source, END_USER_FIELDS);
  } catch {
    throw invalid(`\`end_user\` may hold only ${END_USER_FIELDS.map((f) => `\`${f}\``).join(', ')}`);
  }
  if (typeof source.id !== 'string' || !CONNECTION_ID_PATTERN.test(source.id))
    throw invalid('`end_user.id` must be 1-200 characters of A-Za-z0-9._:@-');
  const endUser: EndUser = { id: source.id };
  for (const field of ['email', 'display_name', 'organization_id'] as const) {
    const text = source[field];
    if (text === undefined || text === null) continue;
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_END_USER_TEXT)
      throw invalid(
        `\`end_user.${field}\` must be a non-empty string of at most ${MAX_END_USER_TEXT} characters`,
      );
    endUser[field] = text;
  }
  return endUser;
}

export function parseTags(value: unknown): Tags {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw invalid('`tags` must be an object of string values');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw invalid(`\`tags\` may hold at most ${MAX_TAGS} entries`);
  const tags: Tags = {};
  for (const [key, text] of entries) {
    // The key is the caller's input: named only when it is well formed, so nothing comes back as markup.
    if (!TAG_KEY_PATTERN.test(key)) throw invalid('`tags` keys must be 1-64 characters of a-z0-9_.-');
    if (typeof text !== 'string' || text.length > MAX_TAG_VALUE)
      throw invalid(`\`tags.${key}\` must be a string of at most ${MAX_TAG_VALUE} characters`);
    tags[key] = text;
  }
  return tags;
}
