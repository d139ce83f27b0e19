import { ExpiryRule } from '../providers/provider-definition';

/**
 * When an access token expires, in epoch milliseconds, or null when nothing tells:
 * `expires_in` first (RFC 6749 §5.1; a number or a numeric string), then what the provider's
 * `expiry` rule declares (the JWT's `exp` claim, RFC 7519 §4.1.4, or an assumed life).
 */
export function computeExpiresAt(
  expiresIn: number | undefined,
  accessToken: string,
  rule: ExpiryRule,
  now: number,
): number | null {
  if (expiresIn !== undefined) return now + expiresIn * 1000;
  if (rule.from === 'jwt_exp') {
    const exp = readJwtExp(accessToken);
    if (exp !== undefined) return exp * 1000;
  }
  if (rule.default_seconds !== undefined) return now + rule.default_seconds * 1000;
  return null;
}

/** The `exp` claim of a JWT, without verifying it: the token is the provider's, not ours to trust or judge. */
export function readJwtExp(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (payload && typeof payload === 'object' && 'exp' in payload) {
      const exp = (payload as { exp: unknown }).exp;
      if (typeof exp === 'number' && Number.isFinite(exp) && exp > 0) return exp;
    }
  } catch {
    // not a JWT after all
  }
  return undefined;
}
