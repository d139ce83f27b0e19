import { randomBytes } from 'node:crypto';
import { DecryptionError, KeyRing, SEALED_BINARY, generateKeyLine } from '../../../src/connections/key-ring';
import { loadConfig } from '../../../src/config/load-config';

const key = (id: string) => ({ id, key: randomBytes(32) });
/** The sealed bytes (IV | tag | ciphertext) of sealed data, which starts with its version byte. */
const bytesOf = (data: string) => {
  expect(data.startsWith(SEALED_BINARY)).toBe(true);
  return Buffer.from(data, 'latin1').subarray(1);
};
const dataOf = (bytes: Buffer) => SEALED_BINARY + bytes.toString('latin1');

describe('KeyRing: AES-256-GCM sealing bound to its AAD', () => {
  const k1 = key('k1');
  const k2 = key('k2');

  it('opens what it sealed (round trip), with the first key of the ring', () => {
    const ring = new KeyRing([k1, k2]);
    const sealed = ring.seal('{"access_token":"at"}', 'aad:bonjoro:a');
    expect(sealed.keyId).toBe('k1');
    expect(ring.activeKeyId).toBe('k1');
    expect(ring.open(sealed, 'aad:bonjoro:a')).toBe('{"access_token":"at"}');
  });

  it('round-trips the empty string and non-ASCII text', () => {
    const ring = new KeyRing([k1]);
    for (const text of ['', 'Zürich ✓ 東京']) expect(ring.open(ring.seal(text, 'x'), 'x')).toBe(text);
  });

  it('holds no plaintext: 12-byte IV, 16-byte tag, then ciphertext as long as the plaintext', () => {
    const ring = new KeyRing([k1]);
    const plaintext = 'secret-token-value';
    const sealed = ring.seal(plaintext, 'x');
    const raw = bytesOf(sealed.data);
    expect(raw.length).toBe(12 + 16 + Buffer.byteLength(plaintext));
    expect(raw.includes(Buffer.from(plaintext))).toBe(false);
    expect(sealed.data).not.toContain(plaintext);
  });

  it('uses a fresh IV for every seal (NIST SP 800-38D §8.2.2)', () => {
    const ring = new KeyRing([k1]);
    const ivs = new Set(
      Array.from({ length: 200 }, () => bytesOf(ring.seal('same', 'x').data).subarray(0, 12).toString('hex')),
    );
    expect(ivs.size).toBe(200);
  });

  it('refuses to open under another AAD (a ciphertext moved to another connection)', () => {
    const ring = new KeyRing([k1]);
    const sealed = ring.seal('at', 'oauth-broker:v1:bonjoro:a');
    expect(() => ring.open(sealed, 'oauth-broker:v1:bonjoro:b')).toThrow(DecryptionError);
    expect(() => ring.open(sealed, 'oauth-broker:v1:bexio:a')).toThrow(DecryptionError);
  });

  it('refuses a flipped bit anywhere: IV, tag or ciphertext', () => {
    const ring = new KeyRing([k1]);
    const sealed = ring.seal('at-value', 'x');
    const raw = bytesOf(sealed.data);
    for (const index of [0, 11, 12, 27, 28, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[index]! ^= 0x01;
      expect(() => ring.open({ keyId: 'k1', data: dataOf(bad) }, 'x')).toThrow(DecryptionError);
    }
  });

  it('refuses a ciphertext too short to hold IV and tag', () => {
    const ring = new KeyRing([k1]);
    for (const data of [dataOf(Buffer.alloc(20)), Buffer.alloc(20).toString('base64')])
      expect(() => ring.open({ keyId: 'k1', data }, 'x')).toThrow(/too short/);
  });

  it('opens data sealed by earlier versions (base64 text of IV | tag | ciphertext), the AAD still checked', () => {
    const ring = new KeyRing([k1]);
    const earlier = { keyId: 'k1', data: bytesOf(ring.seal('at-old', 'x').data).toString('base64') };
    expect(ring.open(earlier, 'x')).toBe('at-old');
    expect(() => ring.open(earlier, 'y')).toThrow(DecryptionError);
  });

  it('opens a ciphertext of a second key of the ring, and names a key id the ring lacks', () => {
    const old = new KeyRing([k1]);
    const sealed = old.seal('at', 'x');
    expect(new KeyRing([k2, k1]).open(sealed, 'x')).toBe('at');
    const without = new KeyRing([k2]);
    expect(without.has('k1')).toBe(false);
    expect(() => without.open(sealed, 'x')).toThrow(DecryptionError);
    expect(() => without.open(sealed, 'x')).toThrow(/"k1"/);
  });

  it('refuses a ciphertext relabelled with another key id of the ring', () => {
    const ring = new KeyRing([k1, k2]);
    const sealed = ring.seal('at', 'x');
    expect(() => ring.open({ keyId: 'k2', data: sealed.data }, 'x')).toThrow(DecryptionError);
  });

  it('refuses the same key id with other key material', () => {
    const sealed = new KeyRing([k1]).seal('at', 'x');
    expect(() => new KeyRing([{ id: 'k1', key: randomBytes(32) }]).open(sealed, 'x')).toThrow(
      DecryptionError,
    );
  });

  it('never puts the plaintext or the key in an error message', () => {
    const ring = new KeyRing([k1]);
    const sealed = ring.seal('plaintext-token-xyz', 'x');
    try {
      ring.open(sealed, 'y');
      throw new Error('opened');
    } catch (error) {
      expect((error as Error).message).not.toContain('plaintext-token-xyz');
      expect((error as Error).message).not.toContain(k1.key.toString('base64'));
    }
  });

  it('needs at least one key', () => {
    expect(() => new KeyRing([])).toThrow();
  });

  it('generates a key line that TOKEN_ENCRYPTION_KEYS accepts', () => {
    const line = generateKeyLine(new Date('2025-03-04T00:00:00Z'));
    expect(line).toMatch(/^k20250304[0-9a-f]{4}:[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(line.split(':')[1]!, 'base64')).toHaveLength(32);
    const config = loadConfig({
      PUBLIC_URL: 'http://127.0.0.1:3000',
      SESSION_SECRET: 's'.repeat(32),
      INTERNAL_API_KEYS: 'k'.repeat(32),
      TOKEN_ENCRYPTION_KEYS: line,
    });
    expect(config.encryptionKeys[0]!.id).toBe(line.split(':')[0]);
  });
});
