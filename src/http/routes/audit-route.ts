import type { RequestHandler } from 'express';
import { AuditPage as AuditLogPage, AuditQuery as AuditLogQuery } from '../../audit/read-audit-log';
import { InternalAccess } from '../internal-access';
import { callerOf } from '../internal-auth';
import { InputCheck } from '../schemas/parse-input';
import { AuditQuery } from '../schemas/queries';
import { givenParameters } from '../validate';

/** The audit log's route (docs/least-privilege.md), as the metrics and the OpenAPI document name it. */
export const AUDIT_ROUTE = '/internal/audit';

export interface AuditRouteDeps {
  access: InternalAccess;
  readAudit: (query: AuditLogQuery) => Promise<AuditLogPage>;
}

/**
 * `GET /internal/audit?actor=&provider=&connection_id=&action=&since=&until=&cursor=&limit=`:
 * newest first, `limit` 1–1000 (default 50); `since` and `until` are ISO 8601 instants, inclusive.
 * An `admin` action for service keys.
 */
export function auditRouteHandler(deps: AuditRouteDeps): RequestHandler {
  return async (req, res) => {
    const query = givenParameters(req.query);
    const input = InputCheck.of(AuditQuery, query);
    input.rejectIfAbout('provider');
    const provider = AuditQuery.shape.provider.parse(query.provider);
    const caller = callerOf(res);
    deps.access.check(caller, req, 'admin', { provider }, res.locals.requestId as string | undefined);
    const { action, cursor, actor, connection_id, since, until, limit } = input.value();
    // A scoped service sees only its providers' entries, as it sees only their connections.
    const { providers } = caller.grant;
    const page = await deps.readAudit({
      actor,
      provider,
      providers: providers === '*' ? undefined : providers,
      connectionId: connection_id,
      action,
      sinceMs: since,
      untilMs: until,
      cursor,
      limit,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ entries: page.entries, next_cursor: page.nextCursor });
  };
}
