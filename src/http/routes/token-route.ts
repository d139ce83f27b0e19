import { parse as parseQuery } from 'node:querystring';
import type { RequestHandler } from 'express';
import { ConnectionService, TokenAnswer, TokenRequestOptions } from '../../connections/connection-service';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { contextHeaders, setContextHeaders } from '../request-context';
import { resolveProvider } from '../resolve-provider';
import { optionalBoolean, optionalInteger, requireConnectionId } from '../validate';

/** The token API's route (CONTRACT.md), as the metrics and the OpenAPI document name it. */
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
 * are left to the router, which accepts them too.
 */
const CANONICAL_TOKEN_URL =
  /^\/internal\/connections\/([a-z0-9-]{1,64})\/([A-Za-z0-9._:@-]{1,200})\/token(?:\?([^#]*))?$/;

export interface TokenFastPathDeps extends TokenRouteDeps {
  /** Whether an Authorization header carries a valid internal key (constant time). */
  keyMatches: (header: string | undefined) => boolean;
  /** Starts the request's id, metrics and log line under the route's pattern; answers the id. */
  track: (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], route: string) => string;
}

/**
 * The token API's common case, ahead of the router: a GET with a valid key and well-formed
 * input is answered here, with the same headers, metrics, log line and problem answers as the
 * routed handler. Anything else (no key, a wrong one, bad input, another spelling) goes on to the
 * router untouched, which answers it as before. The router's layers, parameter decoding and
 * `res.json` cost about a tenth of a token request; this hot path is most of the broker's traffic.
 */
export function tokenFastPath(deps: TokenFastPathDeps): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'GET') return next();
    const match = CANONICAL_TOKEN_URL.exec(req.url);
    if (!match || !deps.keyMatches(req.headers.authorization)) return next();
    let request: TokenRequest;
    try {
      request = parseTokenRequest(deps, match[1], match[2], match[3] ? parseQuery(match[3]) : {});
    } catch {
      return next(); // the router answers the 4xx, through the same checks
    }
    const requestId = deps.track(req, res, TOKEN_ROUTE);
    answerToken(deps, request).then(
      (answer) => {
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
      },
      (error: unknown) => {
        setContextHeaders(res, requestId);
        next(error);
      },
    );
  };
}
