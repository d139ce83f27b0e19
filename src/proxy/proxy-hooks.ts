import type { IncomingMessage } from 'node:http';
import { Caller } from '../access/caller';
import { Provider } from '../providers/provider-definition';

/** One proxied request as the hooks see it: never its query string, headers' values or body. */
export interface ProxyCall {
  /** The request id (the caller's `X-Request-Id` when sane), also sent upstream. */
  requestId: string;
  provider: Provider;
  connectionId: string;
  method: string;
  /** The path under `api_base_url`, without the query string (which may hold secrets). */
  path: string;
  /** The caller's request, for its address; never its body. */
  req: IncomingMessage;
  /** Who is calling, its grant already checked for `proxy` on this provider (docs/least-privilege.md). */
  caller: Caller;
}

/**
 * Where the rest of the broker joins the proxy. Who may proxy is not a hook: the route checks the
 * caller's grant on the ids as sent, before the provider is even looked up (src/http/routes/
 * proxy-route.ts), so a refusal tells nothing of what lies beyond the grant.
 */
export interface ProxyHooks {
  /**
   * A credential of this connection is about to be used upstream: runs once per proxied request,
   * after the token is obtained and right before the first upstream request (a retry after a 401
   * is the same request). Fail closed: when this throws (say the audit entry cannot be written:
   * `503 store_unavailable`), nothing is sent upstream.
   */
  credentialAboutToBeUsed(call: ProxyCall & { authMode: Provider['auth_mode'] }): void | Promise<void>;
}
