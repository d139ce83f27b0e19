/**
 * Header hygiene of the proxy, both ways. RFC 9110 §7.6.1: hop-by-hop fields (`Connection`, the
 * fields it names, and the classic list) belong to one connection and are never forwarded.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Never sent upstream besides the hop-by-hop fields: the caller's own credential (the broker key)
 * and cookies, `Host` (the upstream's comes from `api_base_url`), the length (Node frames the
 * body it sends), `Expect` (the broker's listener answered it already), and the caller's request
 * id (the broker sends its own).
 */
const NEVER_UPSTREAM = new Set([
  'authorization',
  'cookie',
  'host',
  'content-length',
  'expect',
  'x-request-id',
]);

/** Never sent back besides the hop-by-hop fields: cookies of the provider's domain. */
const NEVER_DOWNSTREAM = new Set(['set-cookie']);

/** Field names listed in `Connection` (RFC 9110 §7.6.1), lower-cased. */
function namedByConnection(rawHeaders: readonly string[]): Set<string> {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const name of rawHeaders[i + 1]!.split(',')) if (name.trim()) named.add(name.trim().toLowerCase());
  }
  return named;
}

function isDropped(lower: string, never: Set<string>, named: Set<string>): boolean {
  return (
    HOP_BY_HOP.has(lower) ||
    lower.startsWith('proxy-') ||
    // The broker's own option and error headers, in either direction: an upstream answer must
    // never look like a broker refusal, and the caller's options are the broker's business.
    lower.startsWith('broker-') ||
    never.has(lower) ||
    named.has(lower)
  );
}

/**
 * The caller's headers that may go upstream, as `[name, value]` pairs in their order and case
 * (duplicates kept), minus any name in `replaced` (lower case: the credential and `api_headers`
 * the broker sets).
 */
export function forwardableRequestHeaders(
  rawHeaders: readonly string[],
  replaced: ReadonlySet<string>,
): Array<[string, string]> {
  const named = namedByConnection(rawHeaders);
  const out: Array<[string, string]> = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (isDropped(lower, NEVER_UPSTREAM, named) || replaced.has(lower)) continue;
    out.push([name, rawHeaders[i + 1]!]);
  }
  return out;
}

/** The upstream's response headers that may go back, grouped by name (several values kept). */
export function forwardableResponseHeaders(rawHeaders: readonly string[]): Map<string, string[]> {
  const named = namedByConnection(rawHeaders);
  const out = new Map<string, string[]>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (isDropped(name.toLowerCase(), NEVER_DOWNSTREAM, named)) continue;
    const values = out.get(name);
    if (values) values.push(rawHeaders[i + 1]!);
    else out.set(name, [rawHeaders[i + 1]!]);
  }
  return out;
}
