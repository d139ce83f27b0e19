import { z } from 'zod';

/**
 * A provider is data. Every quirk a provider has is a field here, checked at start-up; code never
 * asks which provider it is talking to. Field names are the contract's (snake_case), so a
 * PROVIDERS_FILE entry and a catalogue entry read the same.
 */
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const expirySchema = z
  .strictObject({
    /** Where the life of an access token comes from when the token response has no `expires_in`. */
    from: z.enum(['expires_in', 'jwt_exp']).optional(),
    /** An assumed life in seconds when nothing else tells. */
    default_seconds: z.number().int().positive().optional(),
  })
  .refine((e) => e.from !== undefined || e.default_seconds !== undefined, {
    message: 'needs "from" or "default_seconds"',
  });

/**
 * How an API key is sent. Without a `prefix`, a key in `Authorization` goes as `Bearer <key>` (the
 * contract's default for a provider without an `api_key` block, RFC 6750 §2.1) and a key in any
 * other header goes bare.
 */
export const apiKeySchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name')
      .default('Authorization'),
    prefix: z.string().max(64).optional(),
    verify_url: httpUrl.optional(),
    verify_method: z.enum(['GET', 'POST', 'HEAD']).default('GET'),
  })
  .transform((settings) => ({
    ...settings,
    prefix: settings.prefix ?? (settings.header.toLowerCase() === 'authorization' ? 'Bearer ' : ''),
  }));

/** A provider without an `api_key` block sends the key as `Authorization: Bearer <key>`. */
export const DEFAULT_API_KEY_SETTINGS = apiKeySchema.parse({});

/**
 * An API base URL: http(s), no credentials, query or fragment (the proxy appends paths to it and
 * passes the caller's query string as it came).
 */
export const apiBaseUrlSchema = httpUrl.refine(
  (value) => {
    // Not a URL at all is the http(s) check's complaint already.
    if (!URL.canParse(value)) return true;
    const url = new URL(value);
    return !url.username && !url.password && !url.search && !url.hash && !value.includes('#');
  },
  { message: 'must carry no credentials, query or fragment' },
);

/**
 * Header names the proxy sets itself or never forwards (RFC 9110 §7.6.1 hop-by-hop fields, the
 * credential, the host): an `api_headers` entry may not name them.
 */
export const RESERVED_API_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'x-request-id',
]);

/** RFC 9110 §5.1 field names (tokens) and §5.5 values (visible characters, spaces and tabs). */
export const apiHeadersSchema = z
  .record(
    z.string(),
    z.string().regex(/^[\t\x20-\x7e\x80-\xff]{0,1024}$/, 'must be a header value without control characters'),
  )
  .superRefine((headers, ctx) => {
    const names = Object.keys(headers);
    if (names.length > 32) ctx.addIssue({ code: 'custom', message: 'at most 32 headers' });
    for (const name of names) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: 'must be an HTTP header name' });
      else if (RESERVED_API_HEADERS.has(name.toLowerCase()))
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'is set by the proxy itself or never forwarded',
        });
    }
  });

/** Every field an entry may name; `id` aside, each is optional so an entry can override a built-in. */
export const providerEntrySchema = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'must be lower case a-z0-9- (1-64 characters)'),
  extends: z.string().min(1).optional(),
  display_name: z.string().min(1).max(100).optional(),
  auth_mode: z.enum(['oauth2', 'api_key']).optional(),
  authorization_url: httpUrl.optional(),
  token_url: httpUrl.optional(),
  revocation_url: httpUrl.nullable().optional(),
  issuer: z.string().min(1).nullable().optional(),
  default_scopes: z
    .array(
      z
        .string()
        .min(1)
        .regex(/^[^\s,]+$/, 'a scope has no spaces or commas'),
    )
    .optional(),
  scope_separator: z.string().min(1).max(3).optional(),
  authorization_params: z.record(z.string(), z.string()).optional(),
  token_request: z.enum(['form', 'json']).optional(),
  client_auth: z.enum(['client_secret_basic', 'client_secret_post']).optional(),
  /** `none` is a named, risky opt-out for servers that reject PKCE parameters (RFC 9700 §2.1.1). */
  pkce: z.enum(['S256', 'none']).optional(),
  expiry: expirySchema.optional(),
  refresh_token_rotation: z.boolean().optional(),
  keepalive_after: z.number().int().min(0).optional(),
  /** The proxy's upstream: every proxied path lies under it (docs/proxy.md). */
  api_base_url: apiBaseUrlSchema.optional(),
  /** Headers the proxy adds to every request to the provider's API (e.g. a dated API version). */
  api_headers: apiHeadersSchema.optional(),
  docs_url: httpUrl.optional(),
  api_key: apiKeySchema.optional(),
});

export type ProviderEntry = z.infer<typeof providerEntrySchema>;
export type ApiKeySettings = z.infer<typeof apiKeySchema>;
export type ExpiryRule = z.infer<typeof expirySchema>;

/** A complete definition, every default filled in. */
export interface ProviderDefinition {
  id: string;
  display_name: string;
  auth_mode: 'oauth2' | 'api_key';
  authorization_url?: string;
  token_url?: string;
  revocation_url?: string;
  issuer?: string;
  default_scopes: string[];
  scope_separator: string;
  authorization_params: Record<string, string>;
  token_request: 'form' | 'json';
  client_auth: 'client_secret_basic' | 'client_secret_post';
  pkce: 'S256' | 'none';
  expiry: ExpiryRule;
  refresh_token_rotation: boolean;
  keepalive_after?: number;
  api_base_url?: string;
  api_headers?: Record<string, string>;
  docs_url?: string;
  api_key?: ApiKeySettings;
}

/** A definition joined with this deployment's credentials and derived values. */
export interface Provider extends ProviderDefinition {
  enabled: boolean;
  /** The variable prefix, e.g. `PROCESS_STREET`. */
  env_prefix: string;
  client_id?: string;
  client_secret?: string;
  /** The scopes asked for by default: `<PROVIDER>_SCOPES` or `default_scopes`. */
  scopes: string[];
  redirect_uri: string;
  /** Seconds after the last refresh at which an idle connection is refreshed; 0 off. */
  keepalive_seconds: number;
}

export const PROVIDER_DEFAULTS: Omit<ProviderDefinition, 'id' | 'display_name'> = {
  auth_mode: 'oauth2',
  default_scopes: [],
  scope_separator: ' ',
  authorization_params: {},
  token_request: 'form',
  client_auth: 'client_secret_basic',
  pkce: 'S256',
  expiry: { from: 'expires_in' },
  refresh_token_rotation: false,
};

export const DEFAULT_KEEPALIVE_SECONDS = 604_800;

export function envPrefixOf(id: string): string {
  return id.toUpperCase().replace(/-/g, '_');
}
