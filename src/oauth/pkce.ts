import { createHash, randomBytes } from 'node:crypto';

/**
 * A PKCE code verifier: 32 random bytes, base64url, 43 characters (RFC 7636 §4.1 asks 43-128
 * characters of high entropy).
 */
export function createCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** The S256 code challenge (RFC 7636 §4.2); `plain` is never used (RFC 9700 §2.1.1). */
export function codeChallengeS256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
