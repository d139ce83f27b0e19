import { z } from 'zod';
import { CONNECTION_ID_PATTERN, says } from './fields';

import { MAX_TAGS, MAX_TAG_VALUE, TAG_KEY_PATTERN } from '../../connections/connection-input';
const END_USER_TEXT_FIELDS = ['email', 'display_name', 'organization_id'] as const;
const MAX_END_USER_TEXT = 320; // an e-mail address may be 254 characters (RFC 5321 §4.5.3.1.3)

function endUserText(field: (typeof END_USER_TEXT_FIELDS)[number]) {
  const message = `\`end_user.${field}\` must be a non-empty string of at most ${MAX_END_USER_TEXT} characters`;
  return z.string(says(message)).min(1, says(message)).max(MAX_END_USER_TEXT, says(message)).optional();
}

/** The app's own user a connection belongs to (docs/end-users-and-tags.md). */
export const EndUser = z.strictObject(
  {
    id: z
      .string(says('`end_user.id` must be 1-200 characters of A-Za-z0-9._:@-'))
      .regex(CONNECTION_ID_PATTERN, says('`end_user.id` must be 1-200 characters of A-Za-z0-9._:@-')),
    email: endUserText('email'),
    display_name: endUserText('display_name'),
    organization_id: endUserText('organization_id'),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `\`end_user\` may hold only \`id\`, ${END_USER_TEXT_FIELDS.map((f) => `\`${f}\``).join(', ')}`
        : '`end_user` must be an object with an `id`',
  },
);

const endUserOrNullDescription =
  'whom the connection belongs to; null clears it (in a request) or none (in metadata)';
export const EndUserOrNull = EndUser.nullable().meta({ description: endUserOrNullDescription });

/**
 * `end_user` as a request names it: a text field sent as `null` is taken as left out, as it always
 * was (the document shows the strict shape).
 */
export const EndUserChange = z
  .preprocess((value) => {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.fromEntries(Object.entries(value).filter(([, text]) => text !== null));
  }, EndUser)
  .nullable()
  .meta({ description: endUserOrNullDescription });

/** Tags: at most 10, keys `[a-z0-9_.-]{1,64}`, values up to 256 characters. */
export const Tags = z
  .record(z.string(), z.string().max(MAX_TAG_VALUE), says('`tags` must be an object of string values'))
  // The count first, then entry by entry, key before value, whatever else is wrong (this issue is
  // about `tags` as a whole, so it is the one reported). A key is the caller's input: named only
  // once it is well formed, so nothing comes back as markup.
  .superRefine(
    (tags, ctx) => {
      const problem = tagsProblem(tags);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    },
    { when: () => true },
  )
  .meta({ description: 'at most 10 entries; keys 1-64 characters of a-z0-9_.-' });

function tagsProblem(tags: unknown): string | undefined {
  if (!tags || typeof tags !== 'object' || Array.isArray(tags)) return undefined; // the type's own issue
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) return `\`tags\` may hold at most ${MAX_TAGS} entries`;
  for (const [key, text] of entries) {
    if (!TAG_KEY_PATTERN.test(key)) return '`tags` keys must be 1-64 characters of a-z0-9_.-';
    if (typeof text !== 'string' || text.length > MAX_TAG_VALUE)
      return `\`tags.${key}\` must be a string of at most ${MAX_TAG_VALUE} characters`;
  }
  return undefined;
}

/**
 * The owner fields of a connect session, an import or a PATCH body: a field left out is not
 * named; `null` clears it (`tags: null` as `{}`).
 */
export const ownerFields = {
  end_user: EndUserChange.optional(),
  tags: z.preprocess((value) => (value === null ? {} : value), Tags).optional(),
};
