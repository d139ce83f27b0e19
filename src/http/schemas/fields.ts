import { z } from 'zod';
import { CONNECTION_ID_PATTERN, connectionIdMessage } from '../../connections/connection-input';

export { CONNECTION_ID_PATTERN };

/**
 * The building blocks of the internal API's shapes (docs/api.md). A request field carries the
 * `detail` a caller reads when it breaks the rule (400 invalid_request naming the field), so the
 * rule and its message are written once, here, beside the type the OpenAPI document shows.
 */
/** The ids of the catalogue; any other path segment is a 404 provider_not_found. */
export const PROVIDER_ID_PATTERN = /^[a-z0-9-]{1,64}$/;
/** RFC 6749 §3.3: a scope token is 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/;
export const MAX_SCOPES = 100;

/** The `error` option of a zod schema or check: one message whatever broke. */
export const says = (message: string) => ({ error: message });

/** An instant as the broker writes it (`Date.toISOString()`); requests are checked on their own. */
export const isoDateTime = () => z.string().meta({ format: 'date-time' });

export function connectionIdField(field = 'connection_id') {
  const message = connectionIdMessage(field);
  return z.string(says(message)).regex(CONNECTION_ID_PATTERN, says(message));
}

export function scopesField(field = 'scopes') {
  const message = `\`${field}\` must be an array of at most ${MAX_SCOPES} scope strings (RFC 6749 §3.3 characters, no spaces)`;
  return z
    .array(z.string(says(message)).regex(SCOPE_PATTERN, says(message)), says(message))
    .max(MAX_SCOPES, says(message));
}

/** A string field that, when given, is 1 to `maxLength` characters. */
export function textField(field: string, maxLength: number) {
  const message = `\`${field}\` must be a non-empty string of at most ${maxLength} characters`;
  return z.string(says(message)).min(1, says(message)).max(maxLength, says(message));
}

/**
 * Field names are the caller's input: shown only as word characters, so nothing comes back as
 * markup.
 */
export function unknownFieldsMessage(keys: readonly string[]): string {
  return `Unknown field ${keys.map((k) => `\`${k.slice(0, 40).replace(/[^\w.-]/g, '?')}\``).join(', ')}.`;
}

/** A JSON object body with exactly these fields: anything else is named in a 400. */
export function bodyObject<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? unknownFieldsMessage(issue.keys)
        : 'The body must be a JSON object (Content-Type: application/json).',
  });
}
