import { randomBytes } from 'node:crypto';

/** An unguessable token for `state`, connect links and CSRF: 256 bits, base64url (RFC 9700 §4.7.1). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
