import type { IRouter, NextFunction, Request, Response } from 'express';
import { confineProxyPath } from '../../proxy/confine-path';
import { Proxy } from '../../proxy/create-proxy';
import { ProviderRegistry } from '../../providers/provider-registry';
import { requestIdOf } from '../problem';
import { resolveProvider } from '../resolve-provider';
import { invalid, requireConnectionId } from '../validate';

/** The proxy's route (docs/proxy.md), as the metrics and the OpenAPI document name it. */
export const PROXY_ROUTE = '/internal/proxy/:provider/:connection_id{/*path}';

const PROXY_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The raw request target: the two ids, then what follows (`/path?query`, `?query` or nothing). */
const PROXY_URL = /^\/internal\/proxy\/([^/?]+)\/([^/?]+)(.*)$/is;

export interface ProxyRouteDeps {
  registry: ProviderRegistry;
  proxy: Proxy;
}

/**
 * `/internal/proxy/:provider/:connection_id/<path>` behind the internal key check. The ids and the
 * path are read from the raw request target (Express's decoded params would hide an encoded `/`
 * or `..`), and checked before the proxy does anything: 404 for the provider, 400 for the rest.
 */
export function registerProxyRoute(deps: ProxyRouteDeps, router: IRouter): void {
  router.all(PROXY_ROUTE, async (req: Request, res: Response, next: NextFunction) => {
    if (!PROXY_METHODS.has(req.method)) return next();
    const match = PROXY_URL.exec(req.originalUrl);
    if (!match) return next();
    const provider = resolveProvider(deps.registry, match[1]);
    const connectionId = requireConnectionId(decodeSegment(match[2]!));
    const tail = match[3]!;
    const slash = tail.startsWith('/');
    const target = { ...confineProxyPath(slash ? tail.slice(1) : tail), bare: !slash };
    await deps.proxy(
      {
        requestId: requestIdOf(res) ?? '',
        provider,
        connectionId,
        method: req.method,
        path: target.path,
        req,
      },
      target,
      res,
    );
  });
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid('`connection_id` is not a valid path segment');
  }
}
