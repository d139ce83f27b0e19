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
  if (/%2e|%2f/i.test(url.pathname)) return false;
  return allowed.some((entry) => {
    const allowedUrl = new URL(entry);
    if (allowedUrl.origin !== url.origin) return false;
    const prefix = allowedUrl.pathname.replace(/\/+$/, '');
    if (prefix === '') return true;
    return url.pathname === prefix || url.pathname.startsWith(`${prefix}/`);
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
