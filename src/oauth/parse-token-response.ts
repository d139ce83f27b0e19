import { ExpiryRule } from '../providers/provider-definition';
import { computeExpiresAt } from './expiry';
import { TokenEndpointError } from './token-endpoint-error';

export interface TokenSet {
  access_token: string;
  token_type: string;
  /** Epoch milliseconds, or null when unknown. */
  expires_at: number | null;
  refresh_token?: string;
  /** The scopes granted, when the response said (`scope`, RFC 6749 §5.1). */
  granted_scopes?: string[];
}

export interface RawHttpResponse {
  status: number;
  contentType: string;
  body: string;
}

const KNOWN_REFUSALS = new Set([
  'invalid_request',
  'invalid_scope',
  'unsupported_grant_type',
  'unsupported_response_type',
  'access_denied',
]);

/**
 * Checks a token endpoint response field by field in RFC 6749 §5.1 order, or classifies its
 * error response (§5.2). Accepts JSON, and form-encoded bodies some providers send.
 */
export function parseTokenResponse(
  response: RawHttpResponse,
  expiry: ExpiryRule,
  now = Date.now(),
): TokenSet {
  const fields = parseBody(response);

  if (response.status < 200 || response.status >= 300) throw classifyErrorResponse(response, fields);
  if (!fields)
    throw new TokenEndpointError('unavailable', 'token response is neither JSON nor form-encoded', {
      httpStatus: response.status,
    });

  const accessToken = fields.access_token;
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw new TokenEndpointError('unavailable', '`access_token` must be a non-empty string', {
      httpStatus: response.status,
    });
  }
  const tokenType = fields.token_type;
  if (tokenType !== undefined && typeof tokenType !== 'string') {
    throw new TokenEndpointError('unavailable', '`token_type` must be a string', {
      httpStatus: response.status,
    });
  }
  const expiresIn = readExpiresIn(fields.expires_in);
  const refreshToken = fields.refresh_token;
  if (refreshToken !== undefined && refreshToken !== null && typeof refreshToken !== 'string') {
    throw new TokenEndpointError('unavailable', '`refresh_token` must be a string', {
      httpStatus: response.status,
    });
  }
  const scope = fields.scope;
  let grantedScopes: string[] | undefined;
  if (typeof scope === 'string') grantedScopes = scope.split(/[\s,]+/).filter(Boolean);
  else if (Array.isArray(scope) && scope.every((s) => typeof s === 'string'))
    grantedScopes = scope as string[];

  return {
    access_token: accessToken,
    token_type: normalizeTokenType(tokenType),
    expires_at: computeExpiresAt(expiresIn, accessToken, expiry, now),
    refresh_token: typeof refreshToken === 'string' && refreshToken.length > 0 ? refreshToken : undefined,
    granted_scopes: grantedScopes,
  };
}

/**
 * `token_type` is answered as the provider said it (docs/api.md, details of the answers: as the provider said it,
 * Bearer when it said nothing); RFC 6749 §5.1 makes it case-insensitive, so callers compare it that way.
 */
function normalizeTokenType(value: string | undefined): string {
  return value ? value : 'Bearer';
}

function readExpiresIn(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isFinite(n) || n < 0) {
    throw new TokenEndpointError('unavailable', '`expires_in` must be a non-negative number');
  }
  return n;
}

function parseBody(response: RawHttpResponse): Record<string, unknown> | undefined {
  const body = response.body.trim();
  if (body.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(body);
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  if (
    /application\/x-www-form-urlencoded|text\/plain/i.test(response.contentType) &&
    /^[\w.~%+-]+=/.test(body)
  ) {
    return Object.fromEntries(new URLSearchParams(body));
  }
  return undefined;
}

function classifyErrorResponse(
  response: RawHttpResponse,
  fields: Record<string, unknown> | undefined,
): TokenEndpointError {
  const status = response.status;
  const oauthError = typeof fields?.error === 'string' ? sanitize(fields.error) : undefined;
  const details = { oauthError, httpStatus: status };
  if (status >= 500 || status === 429 || status === 408) {
    return new TokenEndpointError('unavailable', `token endpoint answered ${status}`, details);
  }
  if (oauthError === 'invalid_grant')
    return new TokenEndpointError('invalid_grant', 'the provider refused the grant (invalid_grant)', details);
  if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client') {
    return new TokenEndpointError(
      'client_rejected',
      `the provider refused the client credentials (${oauthError})`,
      details,
    );
  }
  if (oauthError && KNOWN_REFUSALS.has(oauthError)) {
    return new TokenEndpointError('refused', `the provider refused the request (${oauthError})`, details);
  }
  if (status >= 300 && status < 400)
    return new TokenEndpointError('unavailable', `token endpoint redirected (${status})`, details);
  return new TokenEndpointError(
    'refused',
    `token endpoint answered ${status}${oauthError ? ` (${oauthError})` : ''}`,
    details,
  );
}

function sanitize(value: string): string {
  return value.replace(/[^\w.-]/g, '').slice(0, 64);
}
