import express, { IRouter, Request, Response, Router } from 'express';
import { visibleProviders } from '../../access/caller';
import { ConnectSessionStore } from '../../connections/connect-session-store';
import { parseTagFilters, requireConnectionId } from '../../connections/connection-input';
import { presentConnection } from '../../connections/connection-record';
import { ConnectionService } from '../../connections/connection-service';
import { BrokerError } from '../../errors/broker-error';
import { ProviderRegistry } from '../../providers/provider-registry';
import { unknownProviderMessage } from '../../providers/unknown-provider-message';
import { AccessTarget, InternalAccess } from '../internal-access';
import { callerOf } from '../internal-auth';
import { resolveProvider } from '../resolve-provider';
import { isAllowedReturnUrl } from '../return-to';
import {
  invalid,
  optionalInteger,
  optionalQueryString,
  optionalScopes,
  optionalString,
  rejectUnknownFields,
  requireObjectBody,
} from '../validate';
import { parseOwnerChange } from '../parse-owner';
import { AUDIT_ROUTE, AuditRouteDeps, auditRouteHandler } from './audit-route';
import { listGranted } from './list-granted';
import { parseImport } from './parse-import';
import { presentProvider } from './present-provider';
import { TOKEN_ROUTE, tokenRouteHandler } from './token-route';

export interface InternalRoutesDeps extends AuditRouteDeps {
  publicUrl: string;
  allowedReturnUrls: string[];
  refreshMarginSeconds: number;
  registry: ProviderRegistry;
  connectSessions: ConnectSessionStore;
  connections: ConnectionService;
}

const JSON_LIMIT = '64kb';

/**
 * The caller's grant checked for `action` on what the request names, before anything is looked up
 * (docs/least-privilege.md); answers the caller. A refusal is a 403 with its audit entry.
 */
export function allow(
  access: InternalAccess,
  req: Request,
  res: Response,
  action: Parameters<InternalAccess['check']>[2],
  target: AccessTarget = {},
) {
  const caller = callerOf(res);
  access.check(caller, req, action, target, res.locals.requestId as string | undefined);
  return caller;
}

/** The path's provider and connection as sent (checked against the grant before they are validated). */
export function pathTarget(req: Request): AccessTarget {
  return { provider: String(req.params.provider), connectionId: String(req.params.connection_id) };
}

/**
 * The audit entry of a change just made through the internal API (import, PATCH, delete); a failure
 * to write it is logged and counted, never undoing the change. A PATCH route calls it with 'patch'.
 */
export function auditChange(
  access: InternalAccess,
  req: Request,
  res: Response,
  action: 'import' | 'patch' | 'delete',
  target: { provider: string; connectionId: string },
): void {
  access.changed(
    callerOf(res),
    req,
    action,
    target,
    res.statusCode,
    res.locals.requestId as string | undefined,
  );
}

/**
 * The internal token API (docs/api.md), registered behind the internal key check on `router`.
 * The internal app passes itself, so a token request goes through one router, not a router
 * inside a router (each pass costs per request).
 */
export function createInternalRoutes(deps: InternalRoutesDeps, router: IRouter = Router()): IRouter {
  const json = express.json({ limit: JSON_LIMIT, strict: true, type: () => true });

  // First: the token API is the hot path, and the router tries routes in order.
  router.get(TOKEN_ROUTE, tokenRouteHandler(deps));

  router.post('/internal/connect-sessions', json, async (req, res) => {
    const body = requireObjectBody(req.body);
    rejectUnknownFields(body, ['provider', 'connection_id', 'return_to', 'scopes', 'end_user', 'tags']);
    if (typeof body.provider !== 'string') throw invalid('`provider` must be a string');
    const caller = allow(deps.access, req, res, 'connect', {
      provider: body.provider,
      connectionId: typeof body.connection_id === 'string' ? body.connection_id : undefined,
    });
    const provider = resolveProvider(deps.registry, body.provider);
    const connectionId = requireConnectionId(body.connection_id);
    const returnTo = optionalString(body.return_to, 'return_to', 2048);
    if (returnTo !== undefined && !isAllowedReturnUrl(returnTo, deps.allowedReturnUrls)) {
      throw invalid('`return_to` is not allowed by ALLOWED_RETURN_URLS');
    }
    const scopes = optionalScopes(body.scopes);
    const owner = parseOwnerChange(body);
    const { token, expiresAt } = await deps.connectSessions.create({
      provider: provider.id,
      connection_id: connectionId,
      return_to: returnTo,
      scopes,
      ...owner,
      actor: caller.actor,
    });
    res.status(201).json({
      url: `${deps.publicUrl}/auth/${provider.id}?session=${token}`,
      expires_at: new Date(expiresAt).toISOString(),
    });
  });

  router.get('/internal/connections/:provider/:connection_id', async (req, res) => {
    allow(deps.access, req, res, 'read', pathTarget(req));
    const provider = resolveProvider(deps.registry, req.params.provider);
    const connectionId = requireConnectionId(req.params.connection_id);
    res.json(presentConnection(await deps.connections.read(provider.id, connectionId)));
  });

  router.put('/internal/connections/:provider/:connection_id', json, async (req, res) => {
    allow(deps.access, req, res, 'write', pathTarget(req));
    const provider = resolveProvider(deps.registry, req.params.provider);
    const connectionId = requireConnectionId(req.params.connection_id);
    const body = requireObjectBody(req.body);
    // The owner fields ride beside the credentials; parseImport checks the rest of the body.
    const { end_user: _endUser, tags: _tags, ...credentials } = body;
    const owner = parseOwnerChange(body);
    const imported = parseImport(credentials, provider.auth_mode);
    const { created, connection } =
      imported.kind === 'api_key'
        ? await deps.connections.saveApiKey(provider, connectionId, imported.apiKey, owner)
        : await deps.connections.saveTokens(
            provider,
            connectionId,
            imported.tokens,
            imported.tokens.granted_scopes ?? provider.scopes,
            owner,
          );
    res.status(created ? 201 : 200).json(presentConnection(connection));
    auditChange(deps.access, req, res, 'import', { provider: provider.id, connectionId });
  });

  router.patch('/internal/connections/:provider/:connection_id', json, async (req, res) => {
    allow(deps.access, req, res, 'write', pathTarget(req));
    const provider = resolveProvider(deps.registry, req.params.provider);
    const connectionId = requireConnectionId(req.params.connection_id);
    const body = requireObjectBody(req.body);
    rejectUnknownFields(body, ['end_user', 'tags']);
    const change = parseOwnerChange(body);
    res.json(presentConnection(await deps.connections.updateOwner(provider.id, connectionId, change)));
    auditChange(deps.access, req, res, 'patch', { provider: provider.id, connectionId });
  });

  router.delete('/internal/connections/:provider/:connection_id', async (req, res) => {
    allow(deps.access, req, res, 'delete', pathTarget(req));
    const provider = resolveProvider(deps.registry, req.params.provider);
    const connectionId = requireConnectionId(req.params.connection_id);
    await deps.connections.delete(provider, connectionId);
    res.status(204).end();
    auditChange(deps.access, req, res, 'delete', { provider: provider.id, connectionId });
  });

  router.get('/internal/connections', async (req, res) => {
    // docs/api.md writes the listing as `?provider=&cursor=&limit=`: an empty value means "not given".
    const query = Object.fromEntries(
      Object.entries(req.query as Record<string, unknown>).filter(([, v]) => v !== ''),
    );
    const providerId = optionalQueryString(query, 'provider', 64);
    const caller = allow(deps.access, req, res, 'read', { provider: providerId });
    if (providerId !== undefined && !deps.registry.get(providerId)) {
      throw new BrokerError('provider_not_found', unknownProviderMessage(deps.registry, providerId));
    }
    const limit = optionalInteger(query, 'limit', 1, 1000) ?? 50;
    const cursorParam = optionalQueryString(query, 'cursor', 400);
    const cursor = cursorParam === undefined ? undefined : decodeCursor(cursorParam);
    const endUserId =
      query.end_user_id === undefined ? undefined : requireConnectionId(query.end_user_id, 'end_user_id');
    const tags = parseTagFilters(query.tag);
    const visible = visibleProviders(caller);
    // A scoped service sees only its providers' connections (docs/least-privilege.md), filtered
    // by owner like anyone's.
    const page =
      providerId === undefined && visible !== '*'
        ? await listGranted((o) => deps.connections.list({ ...o, endUserId, tags }), visible, cursor, limit)
        : await deps.connections.list({ provider: providerId, cursor, limit, endUserId, tags });
    res.json({
      connections: page.connections.map(presentConnection),
      next_cursor: page.nextCursor === null ? null : Buffer.from(page.nextCursor).toString('base64url'),
    });
  });

  router.get('/internal/providers', (req, res) => {
    const visible = visibleProviders(allow(deps.access, req, res, 'admin'));
    const enabled = deps.registry.enabled();
    const shown = visible === '*' ? enabled : enabled.filter((p) => visible.includes(p.id));
    res.json({ providers: shown.map(presentProvider) });
  });

  router.get(AUDIT_ROUTE, auditRouteHandler(deps));

  return router;
}

function decodeCursor(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(value)) throw invalid('`cursor` is not a cursor this API gave');
  const decoded = Buffer.from(value, 'base64url').toString('utf8');
  if (!/^[a-z0-9-]+:[A-Za-z0-9._:@-]{1,200}$/.test(decoded))
    throw invalid('`cursor` is not a cursor this API gave');
  return decoded;
}
