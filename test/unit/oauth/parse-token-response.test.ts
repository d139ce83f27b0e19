import { parseTokenResponse, RawHttpResponse } from '../../../src/oauth/parse-token-response';
import { TokenEndpointError } from '../../../src/oauth/token-endpoint-error';
import { ExpiryRule } from '../../../src/providers/provider-definition';
import { fakeJwt } from '../../helpers/fake-provider';

const NOW = 1_700_000_000_000;
const EXPIRES_IN: ExpiryRule = { from: 'expires_in' };

function json(body: unknown, status = 200): RawHttpResponse {
  return {
    status,
    contentType: 'application/json; charset=utf-8',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

function failure(response: RawHttpResponse, rule: ExpiryRule = EXPIRES_IN): TokenEndpointError {
  try {
    parseTokenResponse(response, rule, NOW);
  } catch (error) {
    expect(error).toBeInstanceOf(TokenEndpointError);
    return error as TokenEndpointError;
  }
  throw new Error('parseTokenResponse accepted the response');
}

describe('parseTokenResponse: a successful token response (RFC 6749 §5.1)', () => {
  it.each([
    ['a number', 3600, NOW + 3_600_000],
    ['a numeric string', '3600', NOW + 3_600_000],
    ['a numeric string with spaces', ' 60 ', NOW + 60_000],
    ['a fraction', 1.5, NOW + 1500],
    ['zero', 0, NOW],
    ['missing', undefined, null],
    ['null', null, null],
    ['an empty string', '', null],
  ])('reads expires_in given as %s', (_name, expiresIn, expected) => {
    const body: Record<string, unknown> = { access_token: 'at', token_type: 'Bearer' };
    if (expiresIn !== undefined) body.expires_in = expiresIn;
    expect(parseTokenResponse(json(body), EXPIRES_IN, NOW).expires_at).toBe(expected);
  });

  it.each([['an hour'], [-1], [true], [{ seconds: 60 }], ['1e3']])(
    'refuses expires_in %p, naming the field',
    (expiresIn) => {
      const error = failure(json({ access_token: 'at', expires_in: expiresIn }));
      expect(error.kind).toBe('unavailable');
      expect(error.message).toContain('`expires_in`');
    },
  );

  it('falls back to the JWT exp when the provider declares jwt_exp and expires_in is absent', () => {
    const exp = Math.floor(NOW / 1000) + 900;
    const tokens = parseTokenResponse(
      json({ access_token: fakeJwt({ exp }), token_type: 'bearer' }),
      { from: 'jwt_exp' },
      NOW,
    );
    expect(tokens.expires_at).toBe(exp * 1000);
  });

  it('prefers expires_in over the JWT exp', () => {
    const tokens = parseTokenResponse(
      json({ access_token: fakeJwt({ exp: 42 }), expires_in: 60 }),
      { from: 'jwt_exp' },
      NOW,
    );
    expect(tokens.expires_at).toBe(NOW + 60_000);
  });

  it('assumes the declared default life when nothing else tells', () => {
    expect(
      parseTokenResponse(json({ access_token: 'opaque' }), { from: 'jwt_exp', default_seconds: 3600 }, NOW)
        .expires_at,
    ).toBe(NOW + 3_600_000);
    expect(
      parseTokenResponse(json({ access_token: 'opaque' }), { default_seconds: 120 }, NOW).expires_at,
    ).toBe(NOW + 120_000);
  });

  it.each([
    ['Bearer', 'Bearer'],
    ['bearer', 'bearer'],
    ['BEARER', 'BEARER'],
    ['DPoP', 'DPoP'],
    ['mac', 'mac'],
    [undefined, 'Bearer'],
  ])(
    'reports token_type %p as %p (as the provider said it; Bearer when it said nothing)',
    (type, expected) => {
      expect(
        parseTokenResponse(json({ access_token: 'at', token_type: type }), EXPIRES_IN, NOW).token_type,
      ).toBe(expected);
    },
  );

  it('refuses a token_type that is not a string', () => {
    expect(failure(json({ access_token: 'at', token_type: 7 })).message).toContain('`token_type`');
  });

  it.each([
    ['missing', undefined, undefined],
    ['space separated (RFC 6749 §3.3)', 'read write', ['read', 'write']],
    ['comma separated', 'read,write', ['read', 'write']],
    ['an array', ['read', 'write'], ['read', 'write']],
    ['empty', '', []],
  ])('reads scope %s', (_name, scope, expected) => {
    const body: Record<string, unknown> = { access_token: 'at' };
    if (scope !== undefined) body.scope = scope;
    expect(parseTokenResponse(json(body), EXPIRES_IN, NOW).granted_scopes).toEqual(expected);
  });

  it('keeps the refresh token when there is one, and reports none for an empty or absent one', () => {
    expect(
      parseTokenResponse(json({ access_token: 'at', refresh_token: 'rt' }), EXPIRES_IN, NOW).refresh_token,
    ).toBe('rt');
    expect(
      parseTokenResponse(json({ access_token: 'at', refresh_token: '' }), EXPIRES_IN, NOW).refresh_token,
    ).toBeUndefined();
    expect(parseTokenResponse(json({ access_token: 'at' }), EXPIRES_IN, NOW).refresh_token).toBeUndefined();
    expect(
      parseTokenResponse(json({ access_token: 'at', refresh_token: null }), EXPIRES_IN, NOW).refresh_token,
    ).toBeUndefined();
  });

  it('refuses a refresh_token that is not a string', () => {
    expect(failure(json({ access_token: 'at', refresh_token: 12 })).message).toContain('`refresh_token`');
  });

  it.each([
    ['missing', {}],
    ['empty', { access_token: '' }],
    ['a number', { access_token: 123 }],
    ['an array', { access_token: ['at'] }],
  ])('refuses an access_token that is %s, naming the field', (_name, body) => {
    const error = failure(json(body));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toContain('`access_token`');
  });

  it('reads a form-encoded body', () => {
    const tokens = parseTokenResponse(
      {
        status: 200,
        contentType: 'application/x-www-form-urlencoded',
        body: 'access_token=at%2B1&token_type=bearer&expires_in=60&scope=a+b&refresh_token=rt',
      },
      EXPIRES_IN,
      NOW,
    );
    expect(tokens).toEqual({
      access_token: 'at+1',
      token_type: 'bearer',
      expires_at: NOW + 60_000,
      refresh_token: 'rt',
      granted_scopes: ['a', 'b'],
    });
  });

  it('reads a form-encoded body labelled text/plain', () => {
    expect(
      parseTokenResponse({ status: 200, contentType: 'text/plain', body: 'access_token=at' }, EXPIRES_IN, NOW)
        .access_token,
    ).toBe('at');
  });

  it('reads JSON whatever the content type says', () => {
    expect(
      parseTokenResponse(
        { status: 200, contentType: 'text/html', body: '{"access_token":"at"}' },
        EXPIRES_IN,
        NOW,
      ).access_token,
    ).toBe('at');
  });
});

describe('parseTokenResponse: failures, classified (RFC 6749 §5.2)', () => {
  const html = (status: number): RawHttpResponse => ({
    status,
    contentType: 'text/html',
    body: '<!doctype html><html><body>Oops</body></html>',
  });

  it.each<[string, RawHttpResponse, TokenEndpointError['kind'], string | undefined]>([
    [
      '400 invalid_grant',
      json({ error: 'invalid_grant', error_description: 'expired' }, 400),
      'invalid_grant',
      'invalid_grant',
    ],
    ['401 invalid_grant', json({ error: 'invalid_grant' }, 401), 'invalid_grant', 'invalid_grant'],
    [
      '400 invalid_grant, form-encoded',
      { status: 400, contentType: 'application/x-www-form-urlencoded', body: 'error=invalid_grant' },
      'invalid_grant',
      'invalid_grant',
    ],
    ['401 invalid_client', json({ error: 'invalid_client' }, 401), 'client_rejected', 'invalid_client'],
    [
      '400 unauthorized_client',
      json({ error: 'unauthorized_client' }, 400),
      'client_rejected',
      'unauthorized_client',
    ],
    ['400 invalid_scope', json({ error: 'invalid_scope' }, 400), 'refused', 'invalid_scope'],
    ['400 invalid_request', json({ error: 'invalid_request' }, 400), 'refused', 'invalid_request'],
    [
      '400 unsupported_grant_type',
      json({ error: 'unsupported_grant_type' }, 400),
      'refused',
      'unsupported_grant_type',
    ],
    ['400 with an unknown error', json({ error: 'novel_error' }, 400), 'refused', 'novel_error'],
    ['403 without a body', { status: 403, contentType: '', body: '' }, 'refused', undefined],
    ['404 HTML', html(404), 'refused', undefined],
    ['429', json({ error: 'slow_down' }, 429), 'unavailable', 'slow_down'],
    ['408', { status: 408, contentType: '', body: '' }, 'unavailable', undefined],
    ['500 JSON', json({ error: 'server_error' }, 500), 'unavailable', 'server_error'],
    [
      '500 carrying invalid_grant (a server error first)',
      json({ error: 'invalid_grant' }, 500),
      'unavailable',
      'invalid_grant',
    ],
    ['502 HTML', html(502), 'unavailable', undefined],
    ['503 empty', { status: 503, contentType: '', body: '' }, 'unavailable', undefined],
    ['302 redirect', { status: 302, contentType: '', body: '' }, 'unavailable', undefined],
    ['200 HTML', html(200), 'unavailable', undefined],
    ['200 truncated JSON', json('{"access_token": "a'), 'unavailable', undefined],
    ['200 JSON array', json('[{"access_token":"a"}]'), 'unavailable', undefined],
    ['200 empty', { status: 200, contentType: 'application/json', body: '' }, 'unavailable', undefined],
    ['200 JSON string', json('"at"'), 'unavailable', undefined],
  ])('classifies %s', (_name, response, kind, oauthError) => {
    const error = failure(response);
    expect(error.kind).toBe(kind);
    expect(error.oauthError).toBe(oauthError);
    expect(error.retryable).toBe(kind === 'unavailable');
    if (response.status !== 200) expect(error.httpStatus).toBe(response.status);
  });

  it('keeps only safe characters of an error code it repeats', () => {
    const error = failure(json({ error: 'invalid_grant<script>alert(1)</script>' + 'x'.repeat(200) }, 400));
    expect(error.oauthError).toMatch(/^[\w.-]{1,64}$/);
    expect(error.kind).toBe('refused');
  });

  it('does not repeat an error_description (it may echo what was sent)', () => {
    const error = failure(
      json({ error: 'invalid_grant', error_description: 'refresh token rt-secret-123 is revoked' }, 400),
    );
    expect(error.message).not.toContain('rt-secret-123');
  });
});
