import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IRouter, NextFunction, Request, Response } from 'express';
import { Caller, refusal } from '../../access/caller';
import { requireConnectionId } from '../../connections/connection-input';
import { ConfinedTarget, confineProxyPath } from '../../proxy/confine-path';
import { Proxy } from '../../proxy/create-proxy';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { InternalAccess } from '../internal-access';
import { callerOf } from '../internal-auth';
import { requestIdOf } from '../problem';
import { RequestTracker, setContextHeaders } from '../request-context';
import { resolveProvider } from '../resolve-provider';
import { invalid } from '../validate';

/** The proxy's route (docs/proxy.md), as the metrics and the OpenAPI document name it. */
export const PROXY_ROUTE = '/internal/proxy/:provider/:connection_id{/*path}';

const PROXY_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The raw request target: the two ids, then what follows (`/path?query`, `?query` or nothing). */
const PROXY_URL = /^\/internal\/proxy\/([^/?]+)\/([^/?]+)(.*)$/is;

export interface ProxyRouteDeps {
  registry: ProviderRegistry;
  proxy: Proxy;
  /** The internal API's gate: the caller's grant must hold `proxy` on the provider. */
  access: InternalAccess;
}

interface ProxyTarget {
  provider: Provider;
  connectionId: string;
  target: ConfinedTarget;
}

/** The ids as sent and what follows them, from the raw request target; undefined when it is not the proxy's. */
interface SentTarget {
  provider: string;
  connectionId: string;
  tail: string;
}

/** The provider and connection ids as sent, before any check: what the grant is checked against. */
function sentTarget(url: string): SentTarget | undefined {
  const match = PROXY_URL.exec(url);
  return match ? { provider: match[1]!, connectionId: match[2]!, tail: match[3]! } : undefined;
}

/**
 * The ids and the path, read from the raw request target (Express's decoded params would hide an
 * encoded `/` or `..`) and checked before the proxy does anything: 404 for the provider, 400 for
 * the rest.
 */
function parseProxyTarget(registry: ProviderRegistry, sent: SentTarget): ProxyTarget {
  const provider = resolveProvider(registry, sent.provider);
  const connectionId = requireConnectionId(decodeSegment(sent.connectionId));
  const tail = sent.tail;
  const slash = tail.startsWith('/');
  return {
    provider,
    connectionId,
    target: { ...confineProxyPath(slash ? tail.slice(1) : tail), bare: !slash },
  };
}

function run(
  deps: ProxyRouteDeps,
  parsed: ProxyTarget,
  caller: Caller,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const { provider, connectionId, target } = parsed;
  return deps.proxy(
    { requestId, provider, connectionId, method: req.method ?? 'GET', path: target.path, req, caller },
    target,
    res,
  );
}

/** `/internal/proxy/:provider/:connection_id/<path>` on the internal app, behind its key check. */
export function registerProxyRoute(deps: ProxyRouteDeps, router: IRouter): void {
  router.all(PROXY_ROUTE, async (req: Request, res: Response, next: NextFunction) => {
    if (!PROXY_METHODS.has(req.method)) return next();
    const sent = sentTarget(req.originalUrl);
    if (!sent) return next();
    const requestId = requestIdOf(res) ?? '';
    // The grant first, on the ids as sent: a scoped key learns nothing of what lies beyond it
    // (an unknown provider outside the grant is refused alike; docs/least-privilege.md).
    const caller = callerOf(res);
    deps.access.check(caller, req, 'proxy', sent, requestId);
    await run(deps, parseProxyTarget(deps.registry, sent), caller, req, res, requestId);
  });
}

export interface ProxyFastPathDeps extends ProxyRouteDeps {
  track: RequestTracker;
}

/**
 * The proxy ahead of Express, as the token API's fast path (src/http/routes/token-route.ts) and
 * for the same reason: Express changes the prototype of the request and the response, and V8 then
 * runs Node's HTTP code (here every chunk of both bodies) on them far slower. Takes a request of
 * the six methods from a caller whose grant holds `proxy` on the provider, on the route's exact prefix; anything else is left to
 * the app (answers false). A refusal (bad path, unknown provider, anything the proxy throws before
 * its answer) goes to `fail`, which has the app's error handler answer it.
 */
export function proxyFastPath(
  deps: ProxyFastPathDeps,
): (req: IncomingMessage, res: ServerResponse, fail: (error: unknown) => void) => boolean {
  return (req, res, fail) => {
    const url = req.url ?? '';
    if (!url.startsWith('/internal/proxy/') || !PROXY_METHODS.has(req.method ?? '')) return false;
    // A caller without a key, or outside its grant, is the app's to refuse (with its audit entry
    // and the failed-authentication limit), as on the token API's fast path.
    const caller = deps.access.resolve(req.headers.authorization);
    const sent = sentTarget(url);
    if (!caller || !sent || refusal(caller, 'proxy', sent.provider) !== undefined) return false;
    const requestId = deps.track(req, res, PROXY_ROUTE);
    // The context headers; an upstream answer's own X-Request-Id, if it has one, replaces ours.
    setContextHeaders(res, requestId);
    let parsed: ProxyTarget;
    try {
      parsed = parseProxyTarget(deps.registry, sent);
    } catch (error) {
      fail(error);
      return true;
    }
    run(deps, parsed, caller, req, res, requestId).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      fail(error);
    });
    return true;
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid('`connection_id` is not a valid path segment');
  }
}
