import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { PageResponse, TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/** The headers every answer of /auth and /callback carries, whatever its status. */
function expectFlowHeaders(res: PageResponse): void {
  expect(res.headers.get('cache-control')).toContain('no-store');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  const csp = res.headers.get('content-security-policy') ?? '';
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...values]) => [name!, values]),
  );
  expect(directives.get('default-src')).toEqual(["'none'"]);
  expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
  expect(directives.has('script-src')).toBe(false);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
}

/** A page that loads nothing from anywhere: no script, no external asset, no absolute URL at all. */
function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/https?:\/\//i);
  expect(html).not.toMatch(/<script|<link|<img|<iframe|<object|<embed|\bsrc=|url\(|@import/i);
  expect(html).not.toMatch(/\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
}

/**
 * RFC 9700 §4.2.4 (leaks through Referer and browser history): the callback answers no-store and
 * no-referrer, its pages load nothing third-party under a CSP of default-src 'none', and with a
 * return_to it redirects at once (303), so the code leaves the address bar.
 */
describe('callback and connect page headers', () => {
  const t = useBrokerOnRedis((fakeUrl) => ({
    PROCESS_STREET_AUTH_MODE: 'api_key',
    PROCESS_STREET_API_KEY_VERIFY_URL: `${fakeUrl}/verify`,
  }));

  it('sends the headers with the /auth redirect and with its error pages', async () => {
    const { auth } = await startFlow(t.broker, new TestBrowser(), 'jobber', 'acct-headers-auth');
    expect(auth.status).toBe(302);
    expectFlowHeaders(auth);
    for (const path of [
      '/auth/jobber?session=unknown-token-0000000000000',
      '/auth/jobber',
      '/auth/bexio?session=x',
      '/auth/nobody?session=x',
    ]) {
      const page = await new TestBrowser().get(`${t.broker.publicUrl}${path}`);
      expect(page.status).toBeGreaterThanOrEqual(400);
      expectFlowHeaders(page);
      expectSelfContained(page.body);
    }
  });

  it('redirects at once (303) to return_to on success, with the headers', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-headers-303', {
      return_to: RETURN_TO,
    });
    const res = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-headers-303', state }));
    expect(res.status).toBe(303);
    expect(res.location!.startsWith(`${RETURN_TO}?`)).toBe(true);
    expect(res.location).not.toContain('code-headers-303');
    expect(res.location).not.toContain(state);
    expectFlowHeaders(res);
  });

  it('redirects at once (303) to return_to on a failure, without the code or state', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-headers-fail', {
      return_to: RETURN_TO,
    });
    t.fake.failNext(1, 400, { error: 'invalid_grant' });
    const res = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-headers-fail', state }));
    expect(res.status).toBe(303);
    expect(res.location).not.toContain('code-headers-fail');
    expect(res.location).not.toContain(state);
    expectFlowHeaders(res);
  });

  it('sends the headers with every callback page: connected, refused, unmatched, provider down', async () => {
    const pages: PageResponse[] = [];
    const connected = new TestBrowser();
    const a = await startFlow(t.broker, connected, 'jobber', 'acct-headers-page');
    pages.push(
      await connected.get(callbackUrl(t.broker, 'jobber', { code: 'code-headers-page', state: a.state })),
    );
    expect(pages[0]!.status).toBe(200);

    const denied = new TestBrowser();
    const b = await startFlow(t.broker, denied, 'jobber', 'acct-headers-denied');
    pages.push(await denied.get(callbackUrl(t.broker, 'jobber', { error: 'access_denied', state: b.state })));
    expect(pages[1]!.status).toBe(400);

    pages.push(
      await new TestBrowser().get(callbackUrl(t.broker, 'jobber', { code: 'x', state: 'unmatched' })),
    );
    expect(pages[2]!.status).toBe(400);

    const down = new TestBrowser();
    const c = await startFlow(t.broker, down, 'jobber', 'acct-headers-down');
    t.fake.failNext(1, 503, 'unavailable', 'text/plain');
    pages.push(
      await down.get(callbackUrl(t.broker, 'jobber', { code: 'code-headers-down', state: c.state })),
    );
    expect(pages[3]!.status).toBe(502);

    for (const page of pages) {
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expectFlowHeaders(page);
      expectSelfContained(page.body);
      expect(page.body).not.toContain('code-headers');
    }
  });

  it('sends the headers with the API-key form, which posts only to the broker itself', async () => {
    const browser = new TestBrowser();
    const link = await t.broker.connectLink('process-street', 'acct-headers-form', { return_to: RETURN_TO });
    const form = await browser.get(onListener(t.broker, link));
    expect(form.status).toBe(200);
    expectFlowHeaders(form);
    expectSelfContained(form.body);
    expect(form.body).toMatch(/<form method="post" action="\/auth\/process-street"/);
    const csp = form.headers.get('content-security-policy')!;
    expect(csp).toMatch(/form-action 'self'/);

    const flow = /name="flow" value="([^"]+)"/.exec(form.body)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const refused = await browser.postForm(`${t.broker.publicUrl}/auth/process-street`, {
      flow,
      csrf,
      api_key: 'not-accepted',
    });
    expect(refused.status).toBe(400);
    expectFlowHeaders(refused);
    const accepted = await browser.postForm(`${t.broker.publicUrl}/auth/process-street`, {
      flow,
      csrf,
      api_key: 'good-key-headers',
    });
    expect(accepted.status).toBe(303);
    expectFlowHeaders(accepted);
  });
});
