import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';

const AUTH_FAILURE_LIMIT = 2;

/** Errors that say what to do: over HTTP, on every route that can answer them. */
describe('error details that say what to do', () => {
  const t = useBrokerOnRedis({ AUTH_FAILURE_LIMIT_PER_MINUTE: String(AUTH_FAILURE_LIMIT) });

  it.each([
    ['the token API', (p: string) => ({ path: `/internal/connections/${p}/c1/token` })],
    ['the metadata route', (p: string) => ({ path: `/internal/connections/${p}/c1` })],
    ['the listing', (p: string) => ({ path: `/internal/connections?provider=${p}` })],
    [
      'connect sessions',
      (p: string) => ({
        path: '/internal/connect-sessions',
        method: 'POST',
        body: { provider: p, connection_id: 'c1' },
      }),
    ],
  ])('provider_not_found on %s names the closest id and the enabled ones', async (_name, build) => {
    const request = (p: string) => {
      const r = build(p) as { path: string; method?: string; body?: unknown };
      return { path: r.path, init: { method: r.method, body: r.body } };
    };
    const typo = await t.broker.api(request('jobbr').path, request('jobbr').init);
    expect([typo.status, typo.body.code]).toEqual([404, 'provider_not_found']);
    expect(typo.body.detail).toContain('Unknown provider "jobbr". Did you mean "jobber"?');
    expect(typo.body.detail).toContain('Enabled providers: jobber.');

    const cased = await t.broker.api(request('Jobber').path, request('Jobber').init);
    expect(cased.body.code).toBe('provider_not_found');
    expect(cased.body.detail).toContain('Did you mean "jobber"? Provider ids are case-sensitive');
  });

  it('the rate-limited wrong key says failed authentications were counted, and a valid key still passes', async () => {
    const wrong = { headers: { authorization: `Bearer ${'w'.repeat(40)}` } };
    for (let i = 0; i < AUTH_FAILURE_LIMIT; i++) {
      const refused = await t.broker.api('/internal/providers', wrong);
      expect(refused.status).toBe(401);
    }
    const limited = await t.broker.api('/internal/providers', wrong);
    expect([limited.status, limited.body.code]).toEqual([429, 'rate_limited']);
    expect(limited.body.detail).toContain(
      'each request with a missing or wrong internal API key was counted',
    );
    expect(limited.body.detail).toContain(`past ${AUTH_FAILURE_LIMIT} in a minute`);
    expect(limited.body.detail).toContain('INTERNAL_API_KEYS');
    expect(limited.body.detail).not.toContain('w'.repeat(40));
    const valid = await t.broker.api('/internal/providers', {
      headers: { authorization: `Bearer ${TEST_INTERNAL_KEY}` },
    });
    expect(valid.status).toBe(200);
  });
});
