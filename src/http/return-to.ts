/**
 * Whether `return_to` may receive the browser (RFC 9700 §4.11, open redirectors): an absolute
 * http(s) URL without userinfo whose origin equals an allowed entry's, and whose path equals the
 * entry's path prefix or lies below it at a `/` boundary. Compared after URL parsing, so encoded
 * and backslash variants normalise before the check, and anything unparseable is refused.
 */
export function isAllowedReturnUrl(candidate: string, allowed: readonly string[]): boolean {
  // Control characters are how header-splitting and parser-confusion tricks start: refuse them.
  // eslint-disable-next-line no-control-regex
  if (candidate.length > 2048 || /[\s\\]|%5c/i.test(candidate) || /[\u0000-\u001f\u007f]/.test(candidate))
    return false;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return false;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) return false;
  // Refuse encoded dot segments and slashes: the path must mean what it shows.
  if (/%2e|%2f/i.test(url.pathname) || !isPlainPath(rawPathOf(candidate))) return false;
  return allowed.some((entry) => {
    const allowedUrl = new URL(entry);
    if (allowedUrl.origin !== url.origin) return false;
    const prefix = allowedUrl.pathname.replace(/\/+$/, '');
    if (prefix === '') return true;
    return url.pathname === prefix || url.pathname.startsWith(`${prefix}/`);
  });
}

/**
 * The path as written, before the URL parser resolves dot segments away (RFC 3986 §5.2.4): what
 * lies between the authority and the first `?` or `#`.
 */
function rawPathOf(candidate: string): string {
  const beforeQuery = candidate.split(/[?#]/, 1)[0]!;
  return beforeQuery.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, '');
}

/**
 * A path that every server behind the app reads as the prefix check did: no `;` (path parameters;
 * Tomcat resolves `..;` as `..`), no `%25` (a second decoding turns `%252e` into `.`), and no `.`
 * or `..` segment, plain or percent-encoded (docs/configuration-hardening.md).
 */
function isPlainPath(path: string): boolean {
  if (path.includes(';') || /%25/i.test(path)) return false;
  return path.split('/').every((segment) => {
    const decoded = segment.replace(/%2e/gi, '.');
    return decoded !== '.' && decoded !== '..';
  });
}

/**
 * `return_to` with the outcome added to its query. The app's own query is kept byte for byte (it
 * may be signed, or read by a parser less forgiving than URLSearchParams); only a parameter of the
 * same name as one we add is dropped, so the app reads our value and not a stale one.
 */
export function withQuery(returnTo: string, params: Record<string, string>): string {
  const url = new URL(returnTo);
  const ours = new Set(Object.keys(params));
  const kept = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && !ours.has(paramName(pair)));
  url.search = [...kept, new URLSearchParams(params).toString()].join('&');
  return url.toString();
}

function paramName(pair: string): string {
  const raw = pair.split('=')[0]!.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
