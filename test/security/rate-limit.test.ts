import { TEST_INTERNAL_KEY, TEST_RETURN_ORIGIN, TestBroker } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const BROWSER_LIMIT = 6;
const AUTH_FAILURE_LIMIT = 3;

function expectLimited(status: number, headers: Headers): void {
  expect(status).toBe(429);
  const retryAfter = Number(headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

/**
 * Brute force and flooding: per-IP limits on /auth and /callback, and on failed internal-API
 * authentications, counted in Redis so that they hold across every broker process.
 */
describe('rate limits across two broker processes', () => {
  const env = {
    RATE_LIMIT_PER_MINUTE: String(BROWSER_LIMIT),
    AUTH_FAILURE_LIMIT_PER_MINUTE: String(AUTH_FAILURE_LIMIT),
  };
  // A fresh Redis per test: each starts with a full budget.
  const t = useBrokerOnRedis(env, {}, { second: env, eachTest: true });

  it('answers 429 with Retry-After on /auth and /callback once the budget is spent across both processes, and makes no token request', async () => {
    const browser = new TestBrowser();
    // One real flow (1 request), then junk on both processes up to the limit.
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-limited', { return_to: RETURN_TO });
    for (let i = 1; i < BROWSER_LIMIT; i++) {
      const target =
        i % 2 === 0
          ? `${t.broker.publicUrl}/auth/jobber?session=junk-${i}`
          : `${t.second.publicUrl}/callback/jobber?state=junk-${i}&code=x`;
      expect((await browser.get(target)).status).toBe(400);
    }

    const callback = await browser.get(callbackUrl(t.second, 'jobber', { code: 'code-limited', state }));
    expectLimited(callback.status, callback.headers);
    expect(callback.headers.get('content-type')).toMatch(/^text\/html/);
    expect(callback.body).toContain('Too many attempts');
    expect(t.fake.tokenRequests).toHaveLength(0);

    const auth = await browser.get(`${t.broker.publicUrl}/auth/jobber?session=junk-after`);
    expectLimited(auth.status, auth.headers);
    const otherProcess = await browser.get(`${t.second.publicUrl}/auth/jobber?session=junk-after`);
    expectLimited(otherProcess.status, otherProcess.headers);
  });

  it('does not let a client reset its budget with X-Forwarded-For when no proxy is trusted', async () => {
    for (let i = 0; i < BROWSER_LIMIT; i++)
      await fetch(`${t.broker.publicUrl}/auth/jobber?session=junk-${i}`);
    for (const [i, ip] of ['203.0.113.7', '198.51.100.1', '10.0.0.1'].entries()) {
      const res = await fetch(`${i % 2 ? t.broker.publicUrl : t.second.publicUrl}/auth/jobber?session=junk`, {
        headers: { 'x-forwarded-for': ip, 'x-real-ip': ip },
      });
      expectLimited(res.status, res.headers);
    }
  });

  it('leaves /healthz and the internal API outside the browser limit', async () => {
    for (let i = 0; i <= BROWSER_LIMIT; i++)
      await fetch(`${t.broker.publicUrl}/callback/jobber?state=junk-${i}`);
    expect((await fetch(`${t.broker.publicUrl}/callback/jobber?state=junk`)).status).toBe(429);
    expect((await fetch(`${t.broker.publicUrl}/healthz`)).status).toBe(200);
    expect((await t.second.api('/internal/providers')).status).toBe(200);
  });

  it('answers 429 with Retry-After to failed internal authentications over the limit, across both processes, while the right key still works', async () => {
    const tryKey = (broker: TestBroker, key: string) =>
      fetch(`${broker.internalUrl}/internal/providers`, { headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < AUTH_FAILURE_LIMIT; i++) {
      expect((await tryKey(i % 2 ? t.second : t.broker, `wrong-key-${i}`)).status).toBe(401);
    }
    for (const broker of [t.broker, t.second]) {
      const limited = await tryKey(broker, 'wrong-key-again');
      expectLimited(limited.status, limited.headers);
      expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await limited.json()) as { code: string }).code).toBe('rate_limited');
      // A missing header counts as a failure too.
      const bare = await fetch(`${broker.internalUrl}/internal/providers`);
      expectLimited(bare.status, bare.headers);
    }
    expect((await tryKey(t.broker, TEST_INTERNAL_KEY)).status).toBe(200);
    expect((await tryKey(t.second, TEST_INTERNAL_KEY)).status).toBe(200);
  });
});
