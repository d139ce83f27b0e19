import { z } from 'zod';
import { bodyObject, connectionIdField, says, scopesField, textField } from './fields';
import { ownerFields } from './owner';

/** `POST /internal/connect-sessions` (docs/api.md, the connect flow). */
export const ConnectSessionRequest = bodyObject({
  provider: z.string(says('`provider` must be a string')),
  connection_id: connectionIdField(),
  return_to: textField('return_to', 2048).meta({ format: 'uri' }).optional(),
  scopes: scopesField().optional(),
  ...ownerFields,
});
export type ConnectSessionRequest = z.output<typeof ConnectSessionRequest>;

/** `PATCH /internal/connections/{provider}/{connection_id}`: the owner fields alone. */
export const OwnerPatch = bodyObject(ownerFields);
export type OwnerPatch = z.output<typeof OwnerPatch>;

/** The owner fields of an import, checked before its credentials (which never see them). */
export const ImportOwner = z.object(ownerFields, {
  error: 'The body must be a JSON object (Content-Type: application/json).',
});

const MAX_TOKEN = 16 * 1024;
const MAX_EXPIRES_IN = 10 * 365 * 86400;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * A credential that goes into a header as it is (`Authorization: <token_type> <token>`, an API
 * key's header): a control character would split or corrupt the header (RFC 9110 §5.5), and a
 * space is no part of a token (RFC 6750 §2.1 b64token), so both are refused, as the form does.
 */
/** `missing`: what a caller reads when the field is required and left out. */
function credential(field: string, maxLength: number, missing?: string) {
  const invalid = `\`${field}\` must be a non-empty string of at most ${maxLength} characters`;
  return z
    .string({
      error: (issue) => (missing !== undefined && issue.input === undefined ? missing : invalid),
    })
    .min(1, says(invalid))
    .max(maxLength, says(invalid))
    .refine(
      // eslint-disable-next-line no-control-regex
      (text) => !/[\s\u0000-\u001f\u007f-\u009f]/.test(text),
      says(`\`${field}\` must not hold a control character or a space`),
    );
}

const expiresAtMessage = '`expires_at` must be an ISO 8601 date-time';
const expiresInMessage = '`expires_in` must be a number of seconds';

const tokenFields = {
  access_token: credential('access_token', MAX_TOKEN, '`access_token` is required'),
  refresh_token: credential('refresh_token', MAX_TOKEN).nullable().optional(),
  token_type: credential('token_type', 40).optional(),
  expires_at: z
    .string(says(expiresAtMessage))
    .refine((text) => ISO_8601.test(text) && Number.isFinite(Date.parse(text)), says(expiresAtMessage))
    .meta({ format: 'date-time', description: 'not together with expires_in' })
    .nullable()
    .optional(),
  expires_in: z
    .union(
      [
        z
          .number(says(expiresInMessage))
          .min(0, says(expiresInMessage))
          .max(MAX_EXPIRES_IN, says(expiresInMessage)),
        z
          .string(says(expiresInMessage))
          .regex(/^\d+$/, says(expiresInMessage))
          .refine((digits) => Number(digits) <= MAX_EXPIRES_IN, says(expiresInMessage)),
        z.null(says(expiresInMessage)),
      ],
      says(expiresInMessage),
    )
    .meta({ description: 'seconds, a number or a numeric string; not together with expires_at' })
    .optional(),
  scopes: scopesField().optional(),
};

/** Tokens obtained elsewhere (an oauth2 provider's import); `expires_at` or `expires_in`, not both. */
// The rule between two fields comes after the credentials' own checks and before the instants',
// whatever else is wrong, as it always did.
export const ImportTokens = bodyObject(tokenFields).check(
  z.refine((body) => body.expires_at === undefined || body.expires_in === undefined, {
    error: 'give `expires_at` or `expires_in`, not both',
    when: (payload) =>
      !!payload.value &&
      typeof payload.value === 'object' &&
      !payload.issues.some((issue) => CHECKED_BEFORE_EXPIRY.includes(String(issue.path?.[0]))),
  }),
);
const CHECKED_BEFORE_EXPIRY = ['access_token', 'refresh_token', 'token_type'];
export type ImportTokens = z.output<typeof ImportTokens>;

/** An API key (an api_key provider's import), instead of the token fields. */
const apiKeyFields = {
  api_key: credential('api_key', 4096, '`api_key` is required for an api_key provider').meta({
    description: 'api_key providers only, instead of the token fields',
  }),
};
export const ImportApiKey = bodyObject(apiKeyFields);

/**
 * `PUT /internal/connections/{provider}/{connection_id}` as a caller writes it: the credentials of
 * the provider's auth mode and the owner fields beside them.
 */
export const ImportRequest = z.union([
  bodyObject({ ...tokenFields, ...ownerFields }),
  bodyObject({ ...apiKeyFields, ...ownerFields }),
]);
