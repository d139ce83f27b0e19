import { randomBytes } from 'node:crypto';
import {
  aadFor,
  decodeSecrets,
  encodeSecrets,
  openSecrets,
  sealSecrets,
} from '../../../src/connections/connection-secrets';
import { KeyRing } from '../../../src/connections/key-ring';

const ring = new KeyRing([{ id: 'k1', key: randomBytes(32) }]);

describe('sealed secrets: a compact array, and the object form older records hold', () => {
  it('seals an array without field names, and opens it back to the same secrets', () => {
    const secrets = { access_token: 'at-1', refresh_token: 'rt-1', token_type: 'Bearer' };
    expect(encodeSecrets(secrets)).toBe('["at-1","rt-1","Bearer"]');
    const sealed = sealSecrets(ring, 'bonjoro', 'c1', secrets);
    expect(openSecrets(ring, 'bonjoro', 'c1', { key_id: sealed.keyId, sealed: sealed.data })).toEqual(
      secrets,
    );
  });

  it('keeps absent fields absent: nulls in between, trailing nulls left off', () => {
    expect(encodeSecrets({ api_key: 'k' })).toBe('[null,null,null,"k"]');
    expect(decodeSecrets('[null,null,null,"k"]')).toEqual({ api_key: 'k' });
    expect(encodeSecrets({ access_token: 'at' })).toBe('["at"]');
    expect(decodeSecrets('["at"]')).toEqual({ access_token: 'at' });
    expect(encodeSecrets({})).toBe('[]');
    expect(decodeSecrets('[]')).toEqual({});
  });

  it('opens a record sealed by an older version (a JSON object of named fields)', () => {
    const old = { access_token: 'at-old', refresh_token: 'rt-old', token_type: 'bearer' };
    const sealed = ring.seal(JSON.stringify(old), aadFor('bonjoro', 'c2'));
    expect(openSecrets(ring, 'bonjoro', 'c2', { key_id: 'k1', sealed: sealed.data })).toEqual(old);
  });

  it('is shorter than the object form by the field names', () => {
    const secrets = { access_token: 'a'.repeat(120), refresh_token: 'r'.repeat(64), token_type: 'Bearer' };
    expect(JSON.stringify(secrets).length - encodeSecrets(secrets).length).toBe(44);
  });
});
