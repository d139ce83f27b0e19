import { TokenSet } from '../../oauth/parse-token-response';
import { invalid, optionalScopes, optionalString, rejectUnknownFields } from '../validate';

export type ImportedCredentials = { kind: 'oauth2'; tokens: TokenSet } | { kind: 'api_key'; apiKey: string };

const MAX_TOKEN = 16 * 1024;

/** The body of `PUT /internal/connections/:provider/:connection_id`, checked field by field. */
export function parseImport(
  body: Record<string, unknown>,
  authMode: 'oauth2' | 'api_key',
  now = Date.now(),
): ImportedCredentials {
  if (authMode === 'api_key') {
    rejectUnknownFields(body, ['api_key']);
    const apiKey = credential(body.api_key, 'api_key', 4096);
    if (apiKey === undefined) throw invalid('`api_key` is required for an api_key provider');
    return { kind: 'api_key', apiKey };
  }
  rejectUnknownFields(body, [
    'access_token',
    'refresh_token',
    'expires_at',
    'expires_in',
    'scopes',
    'token_type',
  ]);
  const accessToken = credential(body.access_token, 'access_token', MAX_TOKEN);
  if (accessToken === undefined) throw invalid('`access_token` is required');
  const refreshToken =
    body.refresh_token === null ? undefined : credential(body.refresh_token, 'refresh_token', MAX_TOKEN);
  const tokenType = credential(body.token_type, 'token_type', 40);
  if (body.expires_at !== undefined && body.expires_in !== undefined)
    throw invalid('give `expires_at` or `expires_in`, not both');
  let expiresAt: number | null = null;
  if (body.expires_at !== undefined && body.expires_at !== null) {
    const parsed =
      typeof body.expires_at === 'string' && ISO_8601.test(body.expires_at)
        ? Date.parse(body.expires_at)
        : NaN;
    if (!Number.isFinite(parsed)) throw invalid('`expires_at` must be an ISO 8601 date-time');
    expiresAt = parsed;
  }
  if (body.expires_in !== undefined && body.expires_in !== null) {
    const n =
      typeof body.expires_in === 'number'
        ? body.expires_in
        : typeof body.expires_in === 'string' && /^\d+$/.test(body.expires_in)
          ? Number(body.expires_in)
          : NaN;
    if (!Number.isFinite(n) || n < 0 || n > 10 * 365 * 86400)
      throw invalid('`expires_in` must be a number of seconds');
    expiresAt = now + n * 1000;
  }
  return {
    kind: 'oauth2',
    tokens: {
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: tokenType ?? 'Bearer',
      expires_at: expiresAt,
      granted_scopes: optionalScopes(body.scopes),
    },
  };
}

/**
 * A credential that goes into a header as it is (`Authorization: <token_type> <token>`, an API
 * key's header): a control character would split or corrupt the header (RFC 9110 §5.5), and a
 * space is no part of a token (RFC 6750 §2.1 b64token), so both are refused, as the form does.
 */
function credential(value: unknown, field: string, maxLength: number): string | undefined {
  const text = optionalString(value, field, maxLength);
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && /[\s\u0000-\u001f\u007f-\u009f]/.test(text))
    throw invalid(`\`${field}\` must not hold a control character or a space`);
  return text;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
