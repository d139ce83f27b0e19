import { RawHttpResponse } from '../../../src/oauth/parse-token-response';
import { ProviderNetworkError, ProviderRequest } from '../../../src/oauth/provider-http';
import { verifyApiKey } from '../../../src/oauth/verify-api-key';

const settings = {
  header: 'X-Api-Key',
  prefix: 'Key ',
  verify_url: 'https://acme.example/api/me',
  verify_method: 'GET' as const,
};

/** An outbound HTTP stub that answers `status` (or throws `error`) and records each request. */
function http(answer: number | Error) {
  const calls: ProviderRequest[] = [];
  const send = async (request: ProviderRequest): Promise<RawHttpResponse> => {
    calls.push(request);
    if (answer instanceof Error) throw answer;
    return { status: answer, contentType: 'application/json', body: '{}' };
  };
  return { send, calls };
}

describe('verifyApiKey: one call to the declared verify_url', () => {
  it('sends the key as the API expects it, with the declared method', async () => {
    const { send, calls } = http(200);
    expect(await verifyApiKey(send, { api_key: settings }, 'k-123')).toBe('accepted');
    expect(calls).toEqual([
      {
        method: 'GET',
        url: 'https://acme.example/api/me',
        headers: { 'X-Api-Key': 'Key k-123', Accept: 'application/json' },
      },
    ]);
    await verifyApiKey(send, { api_key: { ...settings, verify_method: 'HEAD' } }, 'k-123');
    expect(calls[1]!.method).toBe('HEAD');
  });

  it.each([
    [200, 'accepted'],
    [204, 'accepted'],
    [401, 'refused'],
    [403, 'refused'],
    [404, 'unavailable'],
    [429, 'unavailable'],
    [500, 'unavailable'],
    [302, 'unavailable'],
  ] as const)('answers %i as %s', async (status, verdict) => {
    expect(await verifyApiKey(http(status).send, { api_key: settings }, 'k')).toBe(verdict);
  });

  it('leaves the key unchecked when the provider cannot be reached or times out', async () => {
    for (const error of [
      new ProviderNetworkError('timeout', true, false),
      new ProviderNetworkError('refused', false, true),
    ]) {
      expect(await verifyApiKey(http(error).send, { api_key: settings }, 'k')).toBe('unavailable');
    }
  });

  it('accepts without a call when the provider declares no verify_url (or no api_key block)', async () => {
    const { send, calls } = http(401);
    expect(await verifyApiKey(send, { api_key: { ...settings, verify_url: undefined } }, 'k')).toBe(
      'accepted',
    );
    expect(await verifyApiKey(send, {}, 'k')).toBe('accepted');
    expect(calls).toHaveLength(0);
  });
});
