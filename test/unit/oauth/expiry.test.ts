import { computeExpiresAt, readJwtExp } from '../../../src/oauth/expiry';
import { fakeJwt } from '../../helpers/fake-provider';

const NOW = 1_700_000_000_000;
const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('computeExpiresAt: expires_in, then the provider expiry rule, else unknown', () => {
  it('counts expires_in from now (RFC 6749 §5.1)', () => {
    expect(computeExpiresAt(3600, 'opaque', { from: 'expires_in' }, NOW)).toBe(NOW + 3_600_000);
    expect(computeExpiresAt(0, 'opaque', { from: 'expires_in' }, NOW)).toBe(NOW);
  });

  it('prefers expires_in over a JWT exp and over a default', () => {
    expect(computeExpiresAt(60, fakeJwt({ exp: 1 }), { from: 'jwt_exp', default_seconds: 3600 }, NOW)).toBe(
      NOW + 60_000,
    );
  });

  it('reads the JWT exp (RFC 7519 §4.1.4) only where the rule says jwt_exp', () => {
    const exp = Math.floor(NOW / 1000) + 500;
    expect(computeExpiresAt(undefined, fakeJwt({ exp }), { from: 'jwt_exp' }, NOW)).toBe(exp * 1000);
    expect(computeExpiresAt(undefined, fakeJwt({ exp }), { from: 'expires_in' }, NOW)).toBeNull();
  });

  it('takes the JWT exp even when it lies in the past (the token is then simply expired)', () => {
    const exp = Math.floor(NOW / 1000) - 10;
    expect(computeExpiresAt(undefined, fakeJwt({ exp }), { from: 'jwt_exp' }, NOW)).toBe(exp * 1000);
  });

  it('falls back to default_seconds when a jwt_exp token is not a JWT', () => {
    expect(computeExpiresAt(undefined, 'opaque', { from: 'jwt_exp', default_seconds: 3600 }, NOW)).toBe(
      NOW + 3_600_000,
    );
  });

  it('answers null (unknown) when nothing tells', () => {
    expect(computeExpiresAt(undefined, 'opaque', { from: 'expires_in' }, NOW)).toBeNull();
    expect(computeExpiresAt(undefined, 'opaque', { from: 'jwt_exp' }, NOW)).toBeNull();
  });
});

describe('readJwtExp: the exp claim without verification', () => {
  it.each([
    ['a JWT with a numeric exp', fakeJwt({ exp: 1_800_000_000 }), 1_800_000_000],
    ['a JWT with a fractional exp', fakeJwt({ exp: 1_800_000_000.5 }), 1_800_000_000.5],
    ['an opaque token', 'abc123', undefined],
    ['two parts', `${part({ alg: 'none' })}.${part({ exp: 1 })}`, undefined],
    ['four parts', `${part({})}.${part({ exp: 1 })}.sig.extra`, undefined],
    ['an empty payload part', `${part({})}..sig`, undefined],
    [
      'a payload that is not JSON',
      `${part({})}.${Buffer.from('not json').toString('base64url')}.sig`,
      undefined,
    ],
    ['a payload that is a JSON array', `${part({})}.${part([1])}.sig`, undefined],
    ['an exp given as a string', fakeJwt({ exp: '1800000000' }), undefined],
    ['a negative exp', fakeJwt({ exp: -5 }), undefined],
    ['a zero exp', fakeJwt({ exp: 0 }), undefined],
    ['no exp claim', fakeJwt({ sub: 'x' }), undefined],
    ['a JSON null payload', `${part({})}.${part(null)}.sig`, undefined],
  ])('reads %s', (_name, token, expected) => {
    expect(readJwtExp(token)).toBe(expected);
  });
});
