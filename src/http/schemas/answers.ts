import { z } from 'zod';
import { AUDIT_ACTIONS } from '../../audit/audit-entry';
import { ERROR_CODES, ErrorCode } from '../../errors/broker-error';
import { isoDateTime } from './fields';
import { EndUserOrNull, Tags } from './owner';

/** What the internal API answers (docs/api.md): the metadata of a connection, never a secret. */
export const AuthMode = z.enum(['oauth2', 'api_key']);

export const LastError = z
  .object({
    code: z.string(),
    message: z.string(),
    at: isoDateTime(),
    /** For `provider_unavailable`: whether the same refresh may succeed later. */
    retryable: z.boolean().optional(),
  })
  .nullable();

export const Connection = z.object({
  provider: z.string(),
  connection_id: z.string(),
  auth_mode: AuthMode,
  status: z.enum(['active', 'reauthorization_required']),
  scopes: z.array(z.string()),
  expires_at: isoDateTime().nullable(),
  created_at: isoDateTime(),
  updated_at: isoDateTime(),
  last_refreshed_at: isoDateTime().nullable(),
  last_error: LastError,
  refresh_failures: z.int().min(0),
  next_refresh_at: isoDateTime().nullable(),
  key_id: z.string(),
  end_user: EndUserOrNull,
  tags: Tags,
});
export type Connection = z.output<typeof Connection>;

export const ConnectionPage = z.object({
  connections: z.array(Connection),
  next_cursor: z.string().nullable(),
});
export type ConnectionPage = z.output<typeof ConnectionPage>;

export const ConnectSession = z.object({
  url: z.string().meta({ format: 'uri' }),
  expires_at: isoDateTime(),
});
export type ConnectSession = z.output<typeof ConnectSession>;

/** A fresh token (oauth2) or the API key and its headers (api_key), told apart by `auth_mode`. */
export const Token = z.discriminatedUnion('auth_mode', [
  z.object({
    auth_mode: z.literal('oauth2'),
    access_token: z.string(),
    token_type: z.string(),
    expires_at: isoDateTime().nullable(),
    scopes: z.array(z.string()),
  }),
  z.object({
    auth_mode: z.literal('api_key'),
    api_key: z.string(),
    headers: z.record(z.string(), z.string()),
    expires_at: z.null(),
    scopes: z.tuple([]),
  }),
]);
export type Token = z.output<typeof Token>;

/** A provider as the API shows it: what a caller needs, never credentials. */
export const ProviderInfo = z.object({
  id: z.string(),
  display_name: z.string(),
  auth_mode: AuthMode,
  scopes: z.array(z.string()),
  redirect_uri: z.string().nullable().meta({ description: 'null for api_key providers' }),
  issuer: z
    .string()
    .nullable()
    .meta({ description: 'RFC 9207 issuer the callback requires in `iss`' })
    .optional(),
  pkce: z.enum(['S256', 'none']).optional(),
  refresh_token_rotation: z.boolean().optional(),
  keepalive_after: z.int().min(0).meta({ description: 'seconds; 0 is off' }).optional(),
  api_base_url: z.string().nullable().optional(),
  api_headers: z.record(z.string(), z.string()).optional(),
  api_key_header: z
    .string()
    .nullable()
    .meta({ description: 'api_key providers: the header the key goes in' })
    .optional(),
  docs_url: z.string().nullable().optional(),
});
export type ProviderInfo = z.output<typeof ProviderInfo>;

export const ProviderList = z.object({ providers: z.array(ProviderInfo) });
export type ProviderList = z.output<typeof ProviderList>;

/** One entry of the audit log (docs/least-privilege.md); never a secret. */
export const AuditEntry = z.object({
  id: z.string(),
  at: isoDateTime(),
  actor: z.string(),
  action: z.enum(AUDIT_ACTIONS),
  provider: z.string().nullable(),
  connection_id: z.string().nullable(),
  status: z.int(),
  request_id: z.string().nullable(),
  ip: z.string().nullable(),
});
export type AuditEntry = z.output<typeof AuditEntry>;

export const AuditPage = z.object({
  entries: z.array(AuditEntry),
  next_cursor: z.string().nullable().meta({
    description: 'null at the end; a page may hold fewer than `limit` entries while more follow',
  }),
});
export type AuditPage = z.output<typeof AuditPage>;

/** An RFC 9457 problem body as the broker sends it (docs/errors.md). */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
  retryable: z.boolean().optional(),
  request_id: z.string().optional(),
  current_token_expires_at: isoDateTime().optional(),
  refused: z
    .object({ action: z.string().optional(), provider: z.string().optional() })
    .meta({ description: 'forbidden: the action or the provider the grant does not allow' })
    .optional(),
});
export type Problem = z.output<typeof Problem>;

export const Readiness = z.object({
  status: z.enum(['ready', 'unavailable']),
  redis: z.enum(['ok', 'unreachable']),
});
