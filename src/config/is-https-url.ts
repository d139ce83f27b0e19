/**
 * Whether a URL is https, by its parsed scheme: schemes are case-insensitive (RFC 3986 §3.1), so
 * `HTTPS://…` is https too, and a string prefix test would say otherwise.
 */
export function isHttpsUrl(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}
