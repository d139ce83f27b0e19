import type { RequestHandler } from 'express';
import { AUDIT_ACTIONS } from '../../audit/audit-entry';
import { AUDIT_ID, AuditPage, AuditQuery } from '../../audit/read-audit-log';
import { InternalAccess } from '../internal-access';
import { callerOf } from '../internal-auth';
import { invalid, optionalInteger, optionalQueryString } from '../validate';

/** The audit log's route (docs/least-privilege.md), as the metrics and the OpenAPI document name it. */
export const AUDIT_ROUTE = '/internal/audit';

export interface AuditRouteDeps {
  access: InternalAccess;
  readAudit: (query: AuditQuery) => Promise<AuditPage>;
}

/**
 * `GET /internal/audit?actor=&provider=&connection_id=&action=&since=&until=&cursor=&limit=`:
 * newest first, `limit` 1–1000 (default 50); `since` and `until` are ISO 8601 instants, inclusive.
 * An `admin` action for service keys.
 */
export function auditRouteHandler(deps: AuditRouteDeps): RequestHandler {
  return async (req, res) => {
    // As the listing: an empty value means "not given".
    const query = Object.fromEntries(
      Object.entries(req.query as Record<string, unknown>).filter(([, v]) => v !== ''),
    );
    const provider = optionalQueryString(query, 'provider', 64);
    const caller = callerOf(res);
    deps.access.check(caller, req, 'admin', { provider }, res.locals.requestId as string | undefined);
    // A scoped service sees only its providers' entries, as it sees only their connections.
    const { providers } = caller.grant;
    const action = optionalQueryString(query, 'action', 32);
    if (action !== undefined && !(AUDIT_ACTIONS as readonly string[]).includes(action))
      throw invalid(`\`action\` must be one of ${AUDIT_ACTIONS.join(', ')}`);
    const cursor = optionalQueryString(query, 'cursor', 64);
    if (cursor !== undefined && !AUDIT_ID.test(cursor))
      throw invalid('`cursor` is not a cursor this API gave');
    const page = await deps.readAudit({
      actor: optionalQueryString(query, 'actor', 200),
      provider,
      providers: providers === '*' ? undefined : providers,
      connectionId: optionalQueryString(query, 'connection_id', 200),
      action,
      sinceMs: optionalInstant(query, 'since'),
      untilMs: optionalInstant(query, 'until'),
      cursor,
      limit: optionalInteger(query, 'limit', 1, 1000) ?? 50,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ entries: page.entries, next_cursor: page.nextCursor });
  };
}

/** An ISO 8601 instant (`2026-01-31T12:00:00Z`, or a date alone), as ms since the epoch. */
function optionalInstant(query: Record<string, unknown>, name: string): number | undefined {
  const value = optionalQueryString(query, name, 40);
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms) || ms < 0) throw invalid(`\`${name}\` must be an ISO 8601 date or instant`);
  return ms;
}
