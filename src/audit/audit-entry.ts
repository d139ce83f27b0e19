/** What an audit entry records (docs/least-privilege.md). */
export const AUDIT_ACTIONS = [
  'token',
  'proxy',
  'connect',
  'import',
  'patch',
  'delete',
  'rekey',
  'unauthorized',
  'forbidden',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** An entry as written. Never a secret: ids, names, a status, the caller's address. */
export interface AuditEvent {
  /** A service's name, `key:<8 hex>` for an INTERNAL_API_KEYS key, `broker` or `cli`. */
  actor: string;
  action: AuditAction;
  provider?: string;
  connection_id?: string;
  /** The HTTP status answered. */
  status: number;
  request_id?: string;
  ip?: string;
}

/** An entry as read: `id` (its place in the log, also a paging cursor) and `at` (when Redis took it). */
export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  provider: string | null;
  connection_id: string | null;
  status: number;
  request_id: string | null;
  ip: string | null;
}

/**
 * The stream fields of an event: one field, `e`, holding a JSON array (actor, action, provider,
 * connection_id, status, request_id, ip; null where absent). One field instead of seven made the
 * XADD about a third cheaper for the broker to send (fewer arguments to encode; bench/audit.mjs),
 * and JSON holds any value a caller may have put in a path.
 */
export function eventFields(event: AuditEvent): [string, string] {
  return [
    'e',
    JSON.stringify([
      event.actor,
      event.action,
      event.provider ?? null,
      event.connection_id ?? null,
      event.status,
      event.request_id ?? null,
      event.ip ?? null,
    ]),
  ];
}

/** An entry read back from shard `shard` (stream id `ms-seq`); the entry's id is `ms-seq-shard`. */
export function entryFrom(streamId: string, shard: number, flat: string[]): AuditEntry {
  let values: unknown[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] !== 'e') continue;
    try {
      const parsed: unknown = JSON.parse(flat[i + 1]!);
      if (Array.isArray(parsed)) values = parsed;
    } catch {
      // not an entry of ours: shown with its id and nothing else
    }
  }
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const ms = Number(streamId.slice(0, streamId.indexOf('-')));
  return {
    id: `${streamId}-${shard}`,
    at: new Date(ms).toISOString(),
    actor: text(values[0]) ?? '',
    action: text(values[1]) ?? '',
    provider: text(values[2]),
    connection_id: text(values[3]),
    status: typeof values[4] === 'number' ? values[4] : 0,
    request_id: text(values[5]),
    ip: text(values[6]),
  };
}
