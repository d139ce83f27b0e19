import { RawHttpResponse } from '../../../src/oauth/parse-token-response';
import { ProviderNetworkError, ProviderRequest } from '../../../src/oauth/provider-http';
import { TokenEndpointDeps, TokenGrant, requestToken } from '../../../src/oauth/request-token';
import { TokenEndpointError } from '../../../src/oauth/token-endpoint-error';

const provider = {
  id: 'acme',
  token_url: 'https://acme.example/token',
  token_request: 'form' as const,
  client_auth: 'client_secret_basic' as const,
  client_id: 'id',
  client_secret: 'secret',
  expiry: { from: 'expires_in' as const },
};

const ok: RawHttpResponse = {
  status: 200,
  contentType: 'application/json',
  body: JSON.stringify({ access_token: 'at', token_type: 'Bearer' }),
};
const refresh: TokenGrant = { grant_type: 'refresh_token', refresh_token: 'rt' };
const code: TokenGrant = {
  grant_type: 'authorization_code',
  code: 'c',
  redirect_uri: 'https://b.example/callback/acme',
};

type Step = RawHttpResponse | Error;

/** An outbound HTTP stub answering `steps` in order; records the calls and the pauses. */
function deps(steps: Step[], extra: Partial<TokenEndpointDeps> = {}) {
  const calls: ProviderRequest[] = [];
  const pauses: number[] = [];
  const d: TokenEndpointDeps = {
    http: async (request) => {
      calls.push(request);
      const step = steps.shift();
      if (!step) throw new Error('unexpected call');
      if (step instanceof Error) throw step;
      return step;
    },
    breakers: new Map(),
    retries: 1,
    sleep: async (ms) => void pauses.push(ms),
    ...extra,
  };
  return { d, calls, pauses };
}

const notSent = () => new ProviderNetworkError('provider unreachable (ECONNREFUSED)', false, true);
const timedOut = () => new ProviderNetworkError('provider timed out', true, false);
const reset = () => new ProviderNetworkError('provider unreachable (ECONNRESET)', false, false);
const status = (s: number, body = '{}') => ({ status: s, contentType: 'application/json', body });

describe('requestToken: which failures are repeated (RFC 6749 §5.2 and idempotency)', () => {
  it.each([
    ['a refresh that never reached the provider', refresh, notSent()],
    ['a code exchange that never reached the provider', code, notSent()],
    ['a refresh answered with 503', refresh, status(503)],
    ['a refresh answered with 500', refresh, status(500, 'oops')],
  ])('repeats %s once, after a jittered pause', async (_name, grant, first) => {
    const { d, calls, pauses } = deps([first, ok]);
    await expect(requestToken(d, provider, grant)).resolves.toMatchObject({ access_token: 'at' });
    expect(calls).toHaveLength(2);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toBeGreaterThanOrEqual(100);
    expect(pauses[0]).toBeLessThanOrEqual(300);
  });

  it.each([
    ['a refresh that timed out (it may have been acted on)', refresh, timedOut()],
    ['a refresh whose connection reset after sending', refresh, reset()],
    ['a code exchange answered with 503 (a code is single use)', code, status(503)],
    ['a code exchange that timed out', code, timedOut()],
    ['a refresh refused with invalid_grant', refresh, status(400, '{"error":"invalid_grant"}')],
    ['a refresh refused with a 4xx', refresh, status(429)],
  ])('does not repeat %s', async (_name, grant, first) => {
    const { d, calls, pauses } = deps([first, ok]);
    await expect(requestToken(d, provider, grant)).rejects.toBeInstanceOf(TokenEndpointError);
    expect(calls).toHaveLength(1);
    expect(pauses).toHaveLength(0);
  });

  it('repeats at most `retries` times', async () => {
    const { d, calls } = deps([status(502), status(502), status(502), ok]);
    await expect(requestToken(d, provider, refresh)).rejects.toMatchObject({ kind: 'unavailable' });
    expect(calls).toHaveLength(2);
  });

  it('repeats nothing with retries 0', async () => {
    const { d, calls } = deps([status(503), ok], { retries: 0 });
    await expect(requestToken(d, provider, refresh)).rejects.toMatchObject({ kind: 'unavailable' });
    expect(calls).toHaveLength(1);
  });

  it('uses the configured circuit settings for a provider met for the first time', async () => {
    const { d } = deps([status(503), status(503)], { circuit: { threshold: 2, openMs: 60_000 }, retries: 1 });
    await expect(requestToken(d, provider, refresh)).rejects.toMatchObject({ kind: 'unavailable' });
    expect(d.breakers.get('acme')!.isOpen).toBe(true);
    const again = deps([ok], { breakers: d.breakers });
    await expect(requestToken(again.d, provider, refresh)).rejects.toThrow(/circuit open/);
    expect(again.calls).toHaveLength(0);
  });
});
