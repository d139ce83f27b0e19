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

/** The stream fields of an event, in a fixed order; absent values are empty strings. */
export function eventFields(event: AuditEvent): string[] {
  return [
    'actor',
    event.actor,
    'action',
    event.action,
    'provider',
    event.provider ?? '',
    'connection_id',
    event.connection_id ?? '',
    'status',
    String(event.status),
    'request_id',
    event.request_id ?? '',
    'ip',
    event.ip ?? '',
  ];
}

/** An entry read back from shard `shard` (stream id `ms-seq`); the entry's id is `ms-seq-shard`. */
export function entryFrom(streamId: string, shard: number, flat: string[]): AuditEntry {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  const ms = Number(streamId.slice(0, streamId.indexOf('-')));
  const orNull = (v: string | undefined): string | null => (v ? v : null);
  return {
    id: `${streamId}-${shard}`,
    at: new Date(ms).toISOString(),
    actor: fields.actor ?? '',
    action: fields.action ?? '',
    provider: orNull(fields.provider),
    connection_id: orNull(fields.connection_id),
    status: Number(fields.status ?? 0),
    request_id: orNull(fields.request_id),
    ip: orNull(fields.ip),
  };
}
