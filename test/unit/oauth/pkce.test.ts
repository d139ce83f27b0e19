import { codeChallengeS256, createCodeVerifier } from '../../../src/oauth/pkce';

describe('PKCE (RFC 7636)', () => {
  it('makes verifiers of 43 unreserved characters (§4.1), a new one each time', () => {
    const verifiers = new Set(Array.from({ length: 50 }, () => createCodeVerifier()));
    expect(verifiers.size).toBe(50);
    for (const v of verifiers) expect(v).toMatch(/^[A-Za-z0-9\-._~]{43}$/);
  });

  it('computes S256 as BASE64URL(SHA256(ASCII(verifier))), the example of Appendix B', () => {
    expect(codeChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('never answers the verifier itself (no plain)', () => {
    const v = createCodeVerifier();
    expect(codeChallengeS256(v)).not.toBe(v);
    expect(codeChallengeS256(v)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
