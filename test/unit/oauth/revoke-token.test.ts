import { RawHttpResponse } from '../../../src/oauth/parse-token-response';
import { ProviderRequest } from '../../../src/oauth/provider-http';
import { revokeToken } from '../../../src/oauth/revoke-token';

const provider = {
  revocation_url: 'https://acme.example/oauth/revoke',
  client_auth: 'client_secret_basic' as const,
  client_id: 'id',
  client_secret: 'secret',
};

/** An outbound HTTP stub that answers `status` and records each request. */
function http(status: number) {
  const calls: ProviderRequest[] = [];
  const send = async (request: ProviderRequest): Promise<RawHttpResponse> => {
    calls.push(request);
    return { status, contentType: 'text/plain', body: '' };
  };
  return { send, calls };
}

describe('revokeToken (RFC 7009 §2.1): best effort, one call', () => {
  it('posts the token and its hint as a form, with client authentication', async () => {
    const { send, calls } = http(200);
    expect(await revokeToken(send, provider, { value: 'rt-1', hint: 'refresh_token' })).toBe(true);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call).toMatchObject({ method: 'POST', url: 'https://acme.example/oauth/revoke' });
    expect(call!.headers).toMatchObject({
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from('id:secret').toString('base64')}`,
    });
    expect(Object.fromEntries(new URLSearchParams(call!.body))).toEqual({
      token: 'rt-1',
      token_type_hint: 'refresh_token',
    });
  });

  it('puts the client credentials in the body for client_secret_post', async () => {
    const { send, calls } = http(200);
    await revokeToken(
      send,
      { ...provider, client_auth: 'client_secret_post' },
      { value: 'at-1', hint: 'access_token' },
    );
    expect(calls[0]!.headers).not.toHaveProperty('Authorization');
    expect(Object.fromEntries(new URLSearchParams(calls[0]!.body))).toEqual({
      token: 'at-1',
      token_type_hint: 'access_token',
      client_id: 'id',
      client_secret: 'secret',
    });
  });

  it.each([
    [200, true],
    [204, true],
    [299, true],
    [300, false],
    [400, false],
    [401, false],
    [503, false],
  ])('answers %i as accepted=%s, without a second call', async (status, accepted) => {
    const { send, calls } = http(status);
    expect(await revokeToken(send, provider, { value: 't', hint: 'refresh_token' })).toBe(accepted);
    expect(calls).toHaveLength(1);
  });

  it('makes no call for a provider without a revocation endpoint', async () => {
    const { send, calls } = http(200);
    expect(
      await revokeToken(
        send,
        { ...provider, revocation_url: undefined },
        { value: 't', hint: 'access_token' },
      ),
    ).toBe(false);
    expect(calls).toHaveLength(0);
  });

  it('lets a network failure reach the caller, which treats revocation as best effort', async () => {
    const failing = async (): Promise<RawHttpResponse> => {
      throw new Error('provider unreachable (ECONNREFUSED)');
    };
    await expect(revokeToken(failing, provider, { value: 't', hint: 'refresh_token' })).rejects.toThrow(
      'provider unreachable',
    );
  });
});
