import { BrokerError } from '../errors/broker-error';

/** A path the proxy may append to `api_base_url`, and the query string as it came. */
export interface ConfinedTarget {
  /** The `<path>` after the route's slash, byte for byte (still percent-encoded); '' for none. */
  path: string;
  /** The raw query string without its `?`, byte for byte; undefined when the URL had none. */
  query?: string;
  /** No slash followed the connection id: the base URL itself. */
  bare?: boolean;
}

const ENCODED_SEPARATOR = /%(?:2f|5c)/i;

function refuse(why: string): BrokerError {
  return new BrokerError('invalid_request', `The proxied path ${why}.`);
}

/**
 * Up to three rounds of percent-decoding: a server or framework behind the provider's edge that
 * decodes once more must not find a `..` or a separator the first check could not see.
 */
function decodeRounds(segment: string): string[] {
  const rounds = [segment];
  let current = segment;
  for (let i = 0; i < 3 && current.includes('%'); i++) {
    try {
      current = decodeURIComponent(current);
    } catch {
      throw refuse('holds a malformed percent-encoding');
    }
    rounds.push(current);
  }
  return rounds;
}

/**
 * Keeps a proxied request under `api_base_url`: the upstream host and base path come from the
 * catalogue alone (RFC 3986 §5.2 would let `..`, `//host` or `scheme:` in a reference replace
 * them). Refused with 400 before any upstream connection: an absolute URL or `//` at the start,
 * `.` or `..` segments (plain or percent-encoded), an encoded `/` or `\`, a `\`, and `@` or `:`
 * in the first segment (userinfo or a scheme). See docs/proxy.md.
 *
 * `rest` is what follows `/internal/proxy/:provider/:connection_id/` in the raw request target.
 */
export function confineProxyPath(rest: string): ConfinedTarget {
  const mark = rest.indexOf('?');
  const path = mark === -1 ? rest : rest.slice(0, mark);
  const query = mark === -1 ? undefined : rest.slice(mark + 1);
  if (path.startsWith('/')) throw refuse('starts with "/" (another host or an absolute path)');
  if (path.includes('\\')) throw refuse('holds a "\\"');
  const segments = path.split('/');
  segments.forEach((segment, index) => {
    for (const form of decodeRounds(segment)) {
      if (form === '.' || form === '..') throw refuse('holds a "." or ".." segment');
      if (form.includes('\\') || ENCODED_SEPARATOR.test(form) || (form !== segment && form.includes('/')))
        throw refuse('holds an encoded "/" or "\\"');
      if (index === 0 && (form.includes(':') || form.includes('@')))
        throw refuse('holds "@" or ":" in its first segment (an absolute URL or credentials)');
    }
  });
  return { path, query };
}

/**
 * `api_base_url`'s path joined with a confined path: the base's path always stays its prefix.
 * `/internal/proxy/p/c` (no slash after the id) is the base itself; `/internal/proxy/p/c/` the
 * base with a slash.
 */
export function upstreamPathOf(basePath: string, target: ConfinedTarget): string {
  const base = basePath.replace(/\/+$/, '');
  const path = target.bare ? base || '/' : `${base}/${target.path}`;
  return target.query === undefined ? path : `${path}?${target.query}`;
}
