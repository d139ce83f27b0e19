import { Agent as HttpAgent, ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { BrokerError } from '../errors/broker-error';
import { ProxyBody } from './read-replayable-body';

/** Keep-alive connection pools to the providers' APIs, one per scheme, shared by every request. */
export interface UpstreamAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

export function createUpstreamAgents(): UpstreamAgents {
  // Idle sockets are kept (and unref'd by Node, so they never hold a process open) for the next
  // request to the same API; no cap on sockets per host beyond what callers send at once.
  const options = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo' as const };
  return { http: new HttpAgent(options), https: new HttpsAgent(options) };
}

/** An `api_base_url` as the proxy uses it, parsed once (not once a request). */
export interface UpstreamBase {
  secure: boolean;
  /** The `Host` field: host and port as the URL has them. */
  host: string;
  /** The host to connect to: an IPv6 literal without its brackets. */
  hostname: string;
  port: number | undefined;
  /** The URL's path, whose prefix every proxied path keeps. */
  pathname: string;
}

const bases = new Map<string, UpstreamBase>();

/**
 * `api_base_url` parsed, from a cache: the providers' base URLs are few and fixed at start (the
 * catalogue and its environment overrides), so the map stays small.
 */
export function upstreamBaseOf(baseUrl: string): UpstreamBase {
  let base = bases.get(baseUrl);
  if (!base) {
    const url = new URL(baseUrl);
    base = {
      secure: url.protocol === 'https:',
      host: url.host,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : undefined,
      pathname: url.pathname,
    };
    bases.set(baseUrl, base);
  }
  return base;
}

export interface UpstreamRequest {
  base: UpstreamBase;
  /** Path and query under the base, already confined. */
  path: string;
  method: string;
  /** The fields to send after `Host`, as name, value, name, value… (the form Node's client takes whole). */
  headers: string[];
  body: ProxyBody;
  /** Milliseconds to wait for the response head (PROXY_TIMEOUT). */
  timeoutMs: number;
  agents: UpstreamAgents;
}

export interface UpstreamExchange {
  request: ClientRequest;
  response: IncomingMessage;
}

/** Methods whose empty body is announced with `Content-Length: 0` (RFC 9110 §8.6). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * One request to the provider's API with node:http(s), streaming: redirects are never followed
 * (Node's client has no such feature; the 3xx is the answer), the body goes as it arrives, and
 * the answer is handed over at its head. A timeout before the head is a 504 `provider_unavailable`,
 * a failed connection a 502; neither names the URL's query nor any header.
 */
export function sendUpstream(spec: UpstreamRequest): Promise<UpstreamExchange> {
  const { base, body } = spec;
  const flat = ['Host', base.host, ...spec.headers];
  if (body.kind === 'buffered') flat.push('Content-Length', String(body.data.length));
  else if (body.kind === 'none' && BODY_METHODS.has(spec.method)) flat.push('Content-Length', '0');
  else if (body.kind === 'streamed' && body.rest.headers['transfer-encoding'] === undefined) {
    const declared = body.rest.headers['content-length'];
    if (declared !== undefined) flat.push('Content-Length', declared);
  }

  return new Promise((resolve, reject) => {
    const request = (base.secure ? httpsRequest : httpRequest)({
      hostname: base.hostname,
      port: base.port,
      method: spec.method,
      path: spec.path,
      headers: flat,
      agent: base.secure ? spec.agents.https : spec.agents.http,
    });
    let settled = false;
    const timer = setTimeout(() => {
      fail(
        new BrokerError('provider_unavailable', 'The provider API did not answer within PROXY_TIMEOUT.', {
          status: 504,
          retryable: true,
        }),
      );
      request.destroy();
    }, spec.timeoutMs);
    const fail = (error: BrokerError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    };
    request.once('response', (response) => {
      if (settled) return void response.destroy();
      settled = true;
      clearTimeout(timer);
      resolve({ request, response });
    });
    request.on('error', (error: NodeJS.ErrnoException) =>
      fail(
        new BrokerError('provider_unavailable', 'The provider API cannot be reached.', {
          status: 502,
          retryable: true,
          cause: new Error(`upstream ${error.code ?? error.name}`),
        }),
      ),
    );

    if (body.kind === 'buffered') request.end(body.data);
    else if (body.kind === 'none') request.end();
    else {
      for (const chunk of body.head) request.write(chunk);
      // A caller gone mid-upload: the upstream must not wait for the rest until PROXY_TIMEOUT.
      body.rest.once('close', () => {
        if (!body.rest.complete) request.destroy();
      });
      body.rest.pipe(request);
      body.rest.resume();
    }
  });
}
