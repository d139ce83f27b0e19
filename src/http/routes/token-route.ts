import { parse as parseQuery } from 'node:querystring';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { ConnectionService, TokenAnswer, TokenRequestOptions } from '../../connections/connection-service';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { RequestTracker, contextHeaders, setContextHeaders } from '../request-context';
import { resolveProvider } from '../resolve-provider';
import { optionalBoolean, optionalInteger, requireConnectionId } from '../validate';

/** The token API's route (docs/api.md), as the metrics and the OpenAPI document name it. */
export const TOKEN_ROUTE = '/internal/connections/:provider/:connection_id/token';

export interface TokenRouteDeps {
  registry: ProviderRegistry;
  connections: ConnectionService;
  refreshMarginSeconds: number;
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

function answerToken(deps: TokenRouteDeps, request: TokenRequest): Promise<TokenAnswer> {
  return deps.connections.getToken(request.provider, request.connectionId, request.options);
}

/** The route as Express serves it: every spelling the router accepts, after the key check. */
export function tokenRouteHandler(deps: TokenRouteDeps): RequestHandler {
  return async (req, res) => {
    const request = parseTokenRequest(
      deps,
      req.params.provider,
      req.params.connection_id,
      req.query as Record<string, unknown>,
    );
    const answer = await answerToken(deps, request);
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
  /** Whether an Authorization header carries a valid internal key (constant time). */
  keyMatches: (header: string | undefined) => boolean;
  /** Starts the request's id, metrics and log line under the route's pattern; answers the id. */
  track: RequestTracker;
}

/**
 * The token API's common case, in front of the Express app: a GET with a valid key and
 * well-formed input is answered here, on Node's own request and response, with the headers,
 * metrics and log line the app gives. It answers false for anything else (no key, a wrong one,
 * bad input, another spelling, another route), untouched, for the app to answer as before; a
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
    if (!match || !deps.keyMatches(req.headers.authorization)) return false;
    let request: TokenRequest;
    try {
      request = parseTokenRequest(deps, match[1], match[2], match[3] ? parseQuery(match[3]) : {});
    } catch {
      return false; // the app answers the 4xx, through the same checks
    }
    const requestId = deps.track(req, res, TOKEN_ROUTE);
    answerToken(deps, request)
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
