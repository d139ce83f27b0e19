import { parse as parseQuery } from 'node:querystring';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { Caller, refusal } from '../../access/caller';
import { requireConnectionId } from '../../connections/connection-input';
import { ConnectionService, TokenAnswer, TokenRequestOptions } from '../../connections/connection-service';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { InternalAccess } from '../internal-access';
import { callerOf } from '../internal-auth';
import { RequestTracker, contextHeaders, setContextHeaders } from '../request-context';
import { resolveProvider } from '../resolve-provider';
import { optionalBoolean, optionalInteger } from '../validate';

/** The token API's route (docs/api.md), as the metrics and the OpenAPI document name it. */
export const TOKEN_ROUTE = '/internal/connections/:provider/:connection_id/token';

export interface TokenRouteDeps {
  registry: ProviderRegistry;
  connections: ConnectionService;
  refreshMarginSeconds: number;
  access: InternalAccess;
}

interface TokenRequest {
  provider: Provider;
  connectionId: string;
  options: TokenRequestOptions;
}

/** The path parameters and query of a token request, checked before any work (4xx otherwise). */
function parseTokenRequest(
  deps: TokenRouteDeps,
  providerId: unknown,
  connectionId: unknown,
  query: Record<string, unknown>,
): TokenRequest {
  const provider = resolveProvider(deps.registry, providerId);
  const id = requireConnectionId(connectionId);
  const minValidity = optionalInteger(query, 'min_validity', 0, 86400) ?? deps.refreshMarginSeconds;
  const forceRefresh = optionalBoolean(query, 'force_refresh') ?? false;
  return { provider, connectionId: id, options: { minValiditySeconds: minValidity, forceRefresh } };
}

/**
 * The token, once its hand-out is in the audit log: the entry is written before the token leaves,
 * and when it cannot be, the answer is 503 and nothing is handed out (docs/least-privilege.md).
 */
async function answerToken(
  deps: TokenRouteDeps,
  request: TokenRequest,
  caller: Caller,
  req: IncomingMessage,
  requestId: string | undefined,
): Promise<TokenAnswer> {
  const answer = await deps.connections.getToken(request.provider, request.connectionId, request.options);
  const target = { provider: request.provider.id, connectionId: request.connectionId };
  await deps.access.handOut(caller, req, 'token', target, requestId);
  return answer;
}

/** The route as Express serves it: every spelling the router accepts, after the key check. */
export function tokenRouteHandler(deps: TokenRouteDeps): RequestHandler {
  return async (req, res) => {
    const requestId = res.locals.requestId as string | undefined;
    const caller = callerOf(res);
    // The grant before any lookup: a refusal tells nothing about what exists beyond it.
    const target = { provider: String(req.params.provider), connectionId: String(req.params.connection_id) };
    deps.access.check(caller, req, 'token', target, requestId);
    const request = parseTokenRequest(
      deps,
      req.params.provider,
      req.params.connection_id,
      req.query as Record<string, unknown>,
    );
    const answer = await answerToken(deps, request, caller, req, requestId);
    res.setHeader('Cache-Control', 'no-store');
    res.json(answer);
  };
}

/**
 * The path as callers send it: the exact route, parameters in the characters they may hold (so
 * nothing to percent-decode), an optional query. Other spellings (case, a trailing slash, escapes)
 * are left to the app's router, which accepts them too.
 */
const CANONICAL_TOKEN_URL =
  /^\/internal\/connections\/([a-z0-9-]{1,64})\/([A-Za-z0-9._:@-]{1,200})\/token(?:\?([^#]*))?$/;

export interface TokenFastPathDeps extends TokenRouteDeps {
  /** Starts the request's id, metrics and log line under the route's pattern; answers the id. */
  track: RequestTracker;
}

/**
 * The token API's common case, in front of the Express app: a GET with a valid key and
 * well-formed input is answered here, on Node's own request and response, with the headers,
 * metrics and log line the app gives. It answers false for anything else (no key, a wrong one,
 * one whose grant refuses the token, bad input, another spelling, another route), untouched, for the app to answer as before; a
 * failure of the work goes to `fail`, which has the app's error handler answer it.
 *
 * Why in front of Express rather than as its first middleware: Express changes the prototype of
 * every request and response it handles (Object.setPrototypeOf, for req.query, res.json…), and V8
 * runs Node's HTTP code on such objects far slower. On a bare Node server that alone halves the
 * throughput; here the token API went from ~190 to ~80 µs of CPU a request (npm run bench).
 */
export function tokenFastPath(
  deps: TokenFastPathDeps,
): (req: IncomingMessage, res: ServerResponse, fail: (error: unknown) => void) => boolean {
  return (req, res, fail) => {
    if (req.method !== 'GET') return false;
    const match = CANONICAL_TOKEN_URL.exec(req.url ?? '');
    if (!match) return false;
    const caller = deps.access.resolve(req.headers.authorization);
    // No key, a wrong one, or one whose grant refuses this: the app answers (and audits) the 401/403.
    if (!caller || refusal(caller, 'token', match[1]) !== undefined) return false;
    let request: TokenRequest;
    try {
      request = parseTokenRequest(deps, match[1], match[2], match[3] ? parseQuery(match[3]) : {});
    } catch {
      return false; // the app answers the 4xx, through the same checks
    }
    const requestId = deps.track(req, res, TOKEN_ROUTE);
    answerToken(deps, request, caller, req, requestId)
      .then((answer) => {
        const body = JSON.stringify(answer);
        // The whole head at once (Node then formats it without a setHeader per field): the
        // request context's headers, what res.json sets (etag is off here) and the no-store.
        res.writeHead(200, {
          ...contextHeaders(requestId),
          'Cache-Control': 'no-store',
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      })
      .catch((error: unknown) => {
        // The app's error handler answers (or, should the head be out already, only logs).
        if (!res.headersSent) setContextHeaders(res, requestId);
        fail(error);
      });
    return true;
  };
}
