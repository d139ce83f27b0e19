/**
 * The shapes of the internal API (docs/api.md), as a caller sees them. Kept free of the broker's
 * own modules so the client can be used by any service that depends on this package; each is the
 * type of the broker's schema for it (src/http/schemas/, whence the OpenAPI document too), which
 * test/unit/client/client-types-match-schemas.test.ts checks type by type.
 */
export type AuthMode = 'oauth2' | 'api_key';

export interface OAuthTokenAnswer {
  auth_mode: 'oauth2';
  access_token: string;
  token_type: string;
  /** ISO 8601, or null when the provider did not say. */
  expires_at: string | null;
  scopes: string[];
}

export interface ApiKeyAnswer {
  auth_mode: 'api_key';
  api_key: string;
  /** The header(s) to send to the provider's API, ready to use. */
  headers: Record<string, string>;
  expires_at: null;
  scopes: [];
}

export type TokenAnswer = OAuthTokenAnswer | ApiKeyAnswer;

export interface ConnectionLastError {
  code: string;
  message: string;
  at: string;
  /** For `provider_unavailable`: whether the same refresh may succeed later. */
  retryable?: boolean;
}

export interface Connection {
  provider: string;
  connection_id: string;
  auth_mode: AuthMode;
  status: 'active' | 'reauthorization_required';
  scopes: string[];
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  last_refreshed_at: string | null;
  last_error: ConnectionLastError | null;
  refresh_failures: number;
  next_refresh_at: string | null;
  key_id: string;
  /** Whom the connection belongs to; null when nobody was named. */
  end_user: EndUser | null;
  /** `{}` when none. */
  tags: Record<string, string>;
}

/** The app's own user a connection belongs to; `id` is 1–200 characters of `A-Za-z0-9._:@-`. */
export interface EndUser {
  id: string;
  email?: string;
  display_name?: string;
  organization_id?: string;
}

/**
 * The owner fields a connect session, import or PATCH may name: left out keeps what the
 * connection holds, `end_user: null` or `tags: {}` clears it. At most 10 tags, keys
 * `[a-z0-9_.-]{1,64}`, values up to 256 characters.
 */
export interface OwnerFields {
  end_user?: EndUser | null;
  tags?: Record<string, string>;
}

export interface ConnectionPage {
  connections: Connection[];
  next_cursor: string | null;
}

export interface ConnectSession {
  url: string;
  expires_at: string;
}

export interface ConnectSessionRequest extends OwnerFields {
  provider: string;
  connection_id: string;
  return_to?: string;
  scopes?: string[];
}

/**
 * Tokens obtained elsewhere (`expires_at` or `expires_in`, not both; null is as left out), or an
 * API key.
 */
export type ImportRequest = (
  | {
      access_token: string;
      refresh_token?: string | null;
      /** ISO 8601. */
      expires_at?: string | null;
      /** Seconds: a number or a string of digits. */
      expires_in?: number | string | null;
      scopes?: string[];
      token_type?: string;
    }
  | { api_key: string }
) &
  OwnerFields;

export interface ProviderInfo {
  id: string;
  display_name: string;
  auth_mode: AuthMode;
  scopes: string[];
  /** Null for api_key providers. */
  redirect_uri: string | null;
  /** RFC 9207 issuer the callback requires in `iss`. */
  issuer?: string | null;
  pkce?: 'S256' | 'none';
  refresh_token_rotation?: boolean;
  /** Seconds; 0 is off. */
  keepalive_after?: number;
  api_base_url?: string | null;
  api_headers?: Record<string, string>;
  /** api_key providers: the header the key goes in. */
  api_key_header?: string | null;
  docs_url?: string | null;
  /** A newer broker may add fields. */
  [field: string]: unknown;
}

/** The broker's stable problem codes; a newer broker may add some, hence `string` too. */
export type ProblemCode =
  | 'unauthorized'
  | 'forbidden'
  | 'invalid_request'
  | 'provider_not_found'
  | 'provider_not_enabled'
  | 'connection_not_found'
  | 'reauthorization_required'
  | 'provider_unavailable'
  | 'provider_rejected_client'
  | 'proxy_not_configured'
  | 'proxy_body_too_large'
  | 'decryption_failed'
  | 'store_unavailable'
  | 'rate_limited'
  | 'internal_error'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | (string & {});

/** An RFC 9457 problem body as the broker sends it. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  retryable?: boolean;
  request_id?: string;
  current_token_expires_at?: string;
  /** With `forbidden`: the action or the provider the service key's grant does not allow. */
  refused?: { action?: string; provider?: string };
  [field: string]: unknown;
}

/** One entry of the audit log (`GET /internal/audit`); never a secret. */
export interface AuditEntry {
  /** Its place in the log; also a paging cursor. */
  id: string;
  at: string;
  /** A service's name, `key:<8 hex>` for an INTERNAL_API_KEYS key, `broker`, `cli` or `unknown` (a 401). */
  actor: string;
  action:
    'token' | 'proxy' | 'connect' | 'import' | 'patch' | 'delete' | 'rekey' | 'unauthorized' | 'forbidden';
  provider: string | null;
  connection_id: string | null;
  /** The HTTP status answered. */
  status: number;
  request_id: string | null;
  ip: string | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Null at the end; a page may hold fewer than `limit` entries while more follow. */
  next_cursor: string | null;
}
