import { z } from 'zod';
import { AUDIT_ACTIONS } from '../../audit/audit-entry';
import { AUDIT_ID } from '../../audit/read-audit-log';
import { connectionIdField, says } from './fields';
import { MAX_TAGS, tagFiltersProblem, tagPairs } from '../../connections/connection-input';

/**
 * The query strings of the internal API (docs/api.md). A parameter arrives as a string, or as a
 * list when repeated: each is checked here, its detail written beside its rule, and described by
 * the type it stands for (an integer, a boolean) in the OpenAPI document.
 */

/** Given at most once, as a string of at most `maxLength` characters (no list, no object). */
function once(name: string, maxLength: number) {
  const message = `\`${name}\` must be given once, as a string`;
  return z.string(says(message)).max(maxLength, says(message));
}

/** An integer from `min` to `max`, written in digits; `fallback` is what its absence means. */
function integer(name: string, min: number, max: number, fallback?: number) {
  const message = `\`${name}\` must be an integer from ${min} to ${max}`;
  const given = once(name, 20);
  return z.preprocess(
    (value, ctx) => {
      const text = given.safeParse(value);
      if (!text.success)
        ctx.addIssue({ code: 'custom', message: text.error.issues[0]!.message, input: value });
      else if (!/^\d+$/.test(text.data)) ctx.addIssue({ code: 'custom', message, input: value });
      return text.success ? Number(text.data) : value;
    },
    z
      .int(says(message))
      .min(min, says(message))
      .max(max, says(message))
      // The document shows the default here: zod leaves it out of a preprocessed value's schema.
      .meta(fallback === undefined ? {} : { default: fallback }),
  );
}

function boolean(name: string) {
  const message = `\`${name}\` must be true or false`;
  const given = once(name, 10);
  return z
    .preprocess(
      (value, ctx) => {
        const text = given.safeParse(value);
        if (!text.success)
          ctx.addIssue({ code: 'custom', message: text.error.issues[0]!.message, input: value });
        return value;
      },
      z.enum(['true', 'false'], says(message)),
    )
    .transform((text) => text === 'true');
}

/** `GET …/token`: `min_validity` seconds (the default is REFRESH_MARGIN_SECONDS), `force_refresh`. */
export const TokenQuery = z.object({
  min_validity: integer('min_validity', 0, 86400).optional(),
  force_refresh: boolean('force_refresh').optional(),
});

const tagFilters = z
  .preprocess(
    (value) => (Array.isArray(value) ? value : [value]),
    z
      .array(z.string().regex(/^[a-z0-9_.-]{1,64}:/))
      .max(MAX_TAGS, says(`\`tag\` may be given at most ${MAX_TAGS} times`))
      // Its problem is about `tag` as a whole, so it is the one reported, whatever its items hold.
      .superRefine(
        (list, ctx) => {
          const problem = Array.isArray(list) ? tagFiltersProblem(list) : undefined;
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        },
        { when: () => true },
      ),
  )
  .transform(tagPairs)
  .meta({ description: '`key:value`, repeatable (at most 10): only connections carrying every one' });

const cursorMessage = '`cursor` is not a cursor this API gave';

/** The listing's cursor: base64url of `provider:connection_id`, the last one of the page before. */
const connectionCursor = once('cursor', 400).transform((value, ctx) => {
  const decoded = /^[A-Za-z0-9_-]{1,400}$/.test(value)
    ? Buffer.from(value, 'base64url').toString('utf8')
    : '';
  if (/^[a-z0-9-]+:[A-Za-z0-9._:@-]{1,200}$/.test(decoded)) return decoded;
  ctx.addIssue({ code: 'custom', message: cursorMessage, input: value });
  return z.NEVER;
});

/** `GET /internal/connections`, in the order its parameters are checked. */
export const ListQuery = z.object({
  provider: once('provider', 64).optional(),
  limit: integer('limit', 1, 1000, 50).default(50),
  cursor: connectionCursor.optional(),
  end_user_id: connectionIdField('end_user_id')
    .meta({ description: 'only the connections of this end user (through an index, never a scan)' })
    .optional(),
  tag: tagFilters.optional(),
});

/** An ISO 8601 instant (`2026-01-31T12:00:00Z`, or a date alone), as ms since the epoch. */
function instant(name: string) {
  const message = `\`${name}\` must be an ISO 8601 date or instant`;
  return once(name, 40)
    .meta({ format: 'date-time' })
    .transform((value, ctx) => {
      const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
        ? Date.parse(value)
        : NaN;
      if (Number.isFinite(ms) && ms >= 0) return ms;
      ctx.addIssue({ code: 'custom', message, input: value });
      return z.NEVER;
    });
}

/** `GET /internal/audit`, in the order its parameters are checked. */
export const AuditQuery = z.object({
  provider: once('provider', 64).optional(),
  action: once('action', 32)
    .refine((action) => (AUDIT_ACTIONS as readonly string[]).includes(action), {
      error: `\`action\` must be one of ${AUDIT_ACTIONS.join(', ')}`,
    })
    .meta({ enum: [...AUDIT_ACTIONS] })
    .optional(),
  cursor: once('cursor', 64).regex(AUDIT_ID, says(cursorMessage)).optional(),
  actor: once('actor', 200).optional(),
  connection_id: once('connection_id', 200).optional(),
  since: instant('since').optional(),
  until: instant('until').optional(),
  limit: integer('limit', 1, 1000, 50).default(50),
});
