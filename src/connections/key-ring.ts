import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EncryptionKey } from '../config/config';

export interface Sealed {
  keyId: string;
  /**
   * The sealed bytes as a binary string (one char a byte, latin1): SEALED_BINARY, then IV (12
   * bytes) | tag (16 bytes) | ciphertext. Earlier versions stored base64 text of IV | tag |
   * ciphertext, which still opens. Bytes, not base64: a quarter smaller in Redis (docs/architecture.md).
   */
  data: string;
}

/** The first byte of binary sealed data: never a base64 character, so the two forms tell apart. */
export const SEALED_BINARY = '\x01';

export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM with a fresh 96-bit IV per seal (NIST SP 800-38D §8.2.2) and the connection's
 * identity as additional authenticated data, so a ciphertext moved to another connection does not
 * open. The first key seals; every key of the ring opens what it sealed. Keys are used as given
 * (32 random bytes): no derivation per request.
 */
export class KeyRing {
  private readonly keys: ReadonlyMap<string, Buffer>;
  readonly activeKeyId: string;

  constructor(keys: EncryptionKey[]) {
    if (keys.length === 0) throw new Error('the key ring needs at least one key');
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    this.activeKeyId = keys[0]!.id;
  }

  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  seal(plaintext: string, aad: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeKeyId)!, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      keyId: this.activeKeyId,
      data: SEALED_BINARY + Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('latin1'),
    };
  }

  open(sealed: Sealed, aad: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new DecryptionError(`no key "${sealed.keyId}" in the ring`);
    const raw = sealed.data.startsWith(SEALED_BINARY)
      ? Buffer.from(sealed.data, 'latin1').subarray(1)
      : Buffer.from(sealed.data, 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new DecryptionError('ciphertext too short');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new DecryptionError(`ciphertext does not open under key "${sealed.keyId}" for this connection`);
    }
  }
}

/** A new ring entry for TOKEN_ENCRYPTION_KEYS: `kid:base64(32 random bytes)`. */
export function generateKeyLine(now = new Date()): string {
  const kid = `k${now.toISOString().slice(0, 10).replace(/-/g, '')}${randomBytes(2).toString('hex')}`;
  return `${kid}:${randomBytes(32).toString('base64')}`;
}
