import { clientAuthentication, encodeBody } from '../../../src/oauth/client-authentication';

const basicOf = (header: string | undefined) =>
  Buffer.from((header ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');

describe('clientAuthentication at the token endpoint (RFC 6749 §2.3.1)', () => {
  it('client_secret_basic: an Authorization header, nothing in the body', () => {
    const auth = clientAuthentication({
      client_auth: 'client_secret_basic',
      client_id: 'id',
      client_secret: 's3cret',
    });
    expect(auth.params).toEqual({});
    expect(Object.keys(auth.headers)).toEqual(['Authorization']);
    expect(auth.headers.Authorization).toMatch(/^Basic [A-Za-z0-9+/]+=*$/);
    expect(basicOf(auth.headers.Authorization)).toBe('id:s3cret');
  });

  it('client_secret_basic form-urlencodes id and secret before base64 (§2.3.1, Appendix B)', () => {
    const { headers } = clientAuthentication({
      client_auth: 'client_secret_basic',
      client_id: 'my id:1',
      client_secret: 'a+b/c d%é',
    });
    expect(basicOf(headers.Authorization)).toBe('my+id%3A1:a%2Bb%2Fc+d%25%C3%A9');
  });

  it('client_secret_post: id and secret as body parameters, no header', () => {
    const auth = clientAuthentication({
      client_auth: 'client_secret_post',
      client_id: 'id',
      client_secret: 's',
    });
    expect(auth).toEqual({ headers: {}, params: { client_id: 'id', client_secret: 's' } });
  });

  it('sends empty strings rather than "undefined" when credentials are missing', () => {
    const auth = clientAuthentication({ client_auth: 'client_secret_basic' });
    expect(basicOf(auth.headers.Authorization)).toBe(':');
    expect(clientAuthentication({ client_auth: 'client_secret_post' }).params).toEqual({
      client_id: '',
      client_secret: '',
    });
  });
});

describe("encodeBody: the provider's token_request format", () => {
  const params = {
    grant_type: 'authorization_code',
    code: 'a b&c=d',
    redirect_uri: 'https://b.example/cb?x=1',
  };

  it('form: application/x-www-form-urlencoded, every value encoded', () => {
    const { contentType, body } = encodeBody('form', params);
    expect(contentType).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(body))).toEqual(params);
    expect(body).toContain('code=a+b%26c%3Dd');
  });

  it('json: application/json with the same fields', () => {
    const { contentType, body } = encodeBody('json', params);
    expect(contentType).toBe('application/json');
    expect(JSON.parse(body)).toEqual(params);
  });
});
