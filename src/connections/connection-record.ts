import { EndUser, Tags } from './connection-owner';

/** What the broker knows of a connection, secrets aside. Times are epoch milliseconds. */
export interface ConnectionMeta {
  provider: string;
  connection_id: string;
  auth_mode: 'oauth2' | 'api_key';
  status: 'active' | 'reauthorization_required';
  scopes: string[];
  expires_at: number | null;
  created_at: number;
  updated_at: number;
  last_refreshed_at: number | null;
  /** The last connect, import or successful refresh: keep-alive counts from here. */
  last_activity_at: number;
  last_error: LastError | null;
  refresh_failures: number;
  next_refresh_at: number | null;
  /** The token API answered it since its last refresh (refresh-ahead candidates). */
  read_since_refresh: boolean;
  /** A refresh token is sealed in the record (known without decrypting). */
  refreshable: boolean;
  key_id: string;
  /** Whom the connection belongs to (docs/end-users-and-tags.md); null when nobody was named. */
  end_user: EndUser | null;
  /** Free-form `key: value` tags, `{}` when none. */
  tags: Tags;
  /** Bumped by every write of the record; the compare-and-set handle, with `generation`. */
  version: number;
  /**
   * Drawn when the record is created and kept until it is deleted: a version restarts at 1 after a
   * delete, so a compare-and-set begun on a deleted record must also compare this to never land
   * on the connection made again under the same id ('' for records written before it existed).
   */
  generation: string;
}

export interface LastError {
  code: string;
  message: string;
  at: number;
}

/** The secrets, sealed together as one JSON document. */
export interface ConnectionSecrets {
  access_token?: string;
  refresh_token?: string;
  token_type?: string;
  api_key?: string;
}

export interface StoredConnection extends ConnectionMeta {
  sealed: string;
}

/** The connection metadata as the API shows it: ISO times, never secrets. */
export function presentConnection(meta: ConnectionMeta): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    provider: meta.provider,
    connection_id: meta.connection_id,
    auth_mode: meta.auth_mode,
    status: meta.status,
    scopes: meta.scopes,
    expires_at: iso(meta.expires_at),
    created_at: iso(meta.created_at),
    updated_at: iso(meta.updated_at),
    last_refreshed_at: iso(meta.last_refreshed_at),
    last_error: meta.last_error ? { ...meta.last_error, at: iso(meta.last_error.at) } : null,
    refresh_failures: meta.refresh_failures,
    next_refresh_at: iso(meta.next_refresh_at),
    key_id: meta.key_id,
    end_user: meta.end_user,
    tags: meta.tags,
  };
}
