import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { NOTHING_STORED, connectionFootprint, onListener, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * The browser routes take each parameter once, as a string, and bodies of bounded size: a repeated
 * or bracketed parameter, or an oversized form, is refused with a 400-class page, makes no token
 * request, stores nothing, and does not use up the flow.
 */
describe('parameter pollution and oversized bodies on the browser routes', () => {
  const t = useBrokerOnRedis((fakeUrl) => ({
    PROCESS_STREET_AUTH_MODE: 'api_key',
    PROCESS_STREET_API_KEY_VERIFY_URL: `${fakeUrl}/verify`,
  }));

  it('refuses a connect link whose session token is repeated or bracketed, and keeps the link usable', async () => {
    const link = new URL(
      onListener(
        t.broker,
        await t.broker.connectLink('jobber', 'acct-pollute-link', { return_to: RETURN_TO }),
      ),
    );
    const token = link.searchParams.get('session')!;
    const base = `${t.broker.publicUrl}${link.pathname}`;
    for (const query of [
      `session=${token}&session=${token}`,
      `session[]=${token}`,
      `session[a]=${token}`,
      `session=&session=${token}`,
    ]) {
      const res = await new TestBrowser().get(`${base}?${query}`);
      expect(res.status).toBe(400);
      expect(res.setCookies).toEqual([]);
    }
    expect((await new TestBrowser().get(link.toString())).status).toBe(302);
  });

  it('makes no token request for a callback whose code is repeated, and reports provider_error', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-pollute-code', {
      return_to: RETURN_TO,
    });
    const res = await browser.get(
      `${t.broker.publicUrl}/callback/jobber?state=${state}&code=code-one&code=code-two`,
    );
    expect(res.status).toBe(303);
    expect(new URL(res.location!).searchParams.get('error')).toBe('provider_error');
    expect(t.fake.tokenRequests.filter((r) => /code-one|code-two/.test(r.rawBody))).toHaveLength(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-pollute-code')).toEqual(NOTHING_STORED);
  });

  it('refuses an oversized code without a token request', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-pollute-long-code', {
      return_to: RETURN_TO,
    });
    const before = t.fake.tokenRequests.length;
    const res = await browser.get(
      `${t.broker.publicUrl}/callback/jobber?state=${state}&code=${'c'.repeat(5000)}`,
    );
    expect(new URL(res.location!).searchParams.get('error')).toBe('provider_error');
    expect(t.fake.tokenRequests.length).toBe(before);
  });

  it('refuses an oversized or polluted API-key form with a page, stores nothing, and keeps the flow for another try', async () => {
    const browser = new TestBrowser();
    const form = await browser.get(
      onListener(
        t.broker,
        await t.broker.connectLink('process-street', 'acct-pollute-form', { return_to: RETURN_TO }),
      ),
    );
    const flow = /name="flow" value="([^"]+)"/.exec(form.body)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const url = `${t.broker.publicUrl}/auth/process-street`;

    const big = await browser.postForm(url, { flow, csrf, api_key: `good-key-${'k'.repeat(64 * 1024)}` });
    expect(big.status).toBe(413);
    expect(big.headers.get('content-type')).toMatch(/^text\/html/);
    const many = await browser.postForm(
      url,
      Object.fromEntries([
        ['flow', flow],
        ['csrf', csrf],
        ['api_key', 'good-key-1'],
        ...Array.from({ length: 50 }, (_, i) => [`p${i}`, 'x']),
      ]),
    );
    expect(many.status).toBeGreaterThanOrEqual(400);
    expect(many.status).toBeLessThan(500);
    const twice = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: browser.cookieHeader(),
        accept: 'text/html',
      },
      body: `flow=${flow}&csrf=${csrf}&api_key=good-key-a&api_key=good-key-b`,
      redirect: 'manual',
    });
    expect(twice.status).toBe(400);
    expect(await connectionFootprint(t.client, 'process-street', 'acct-pollute-form')).toEqual(
      NOTHING_STORED,
    );

    const ok = await browser.postForm(url, { flow, csrf, api_key: 'good-key-finally' });
    expect(ok.status).toBe(303);
  });
});
