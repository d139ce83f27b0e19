import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

interface Cookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
}

function parseSetCookie(header: string): Cookie {
  const [pair, ...rest] = header.split(';').map((s) => s.trim());
  const eq = pair!.indexOf('=');
  const attributes = new Map<string, string>();
  for (const attr of rest) {
    const i = attr.indexOf('=');
    attributes.set((i < 0 ? attr : attr.slice(0, i)).toLowerCase(), i < 0 ? '' : attr.slice(i + 1));
  }
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes };
}

function sessionIdOf(value: string): string {
  return decodeURIComponent(value).replace(/^s:/, '').split('.')[0]!;
}

/**
 * The session cookie that binds a flow to its browser (docs/security.md: HttpOnly, SameSite=Lax, Path=/,
 * Secure exactly when PUBLIC_URL is https), and session fixation: the session id changes when a
 * flow starts, so an id planted in a victim's browser is worth nothing.
 */
describe('session cookie flags', () => {
  // `t.second` sits behind a TLS proxy: PUBLIC_URL is https while the listener the test talks to is
  // plain http.
  const t = useBrokerOnRedis(
    {},
    {},
    { second: { REDIS_KEY_PREFIX: 'obs:', PUBLIC_URL: 'https://connect.example.com' } },
  );

  it('sets an HttpOnly, SameSite=Lax, Path=/ cookie without Secure when PUBLIC_URL is http', async () => {
    const { auth } = await startFlow(t.broker, new TestBrowser(), 'jobber', 'acct-cookie-http');
    expect(auth.setCookies).toHaveLength(1);
    const cookie = parseSetCookie(auth.setCookies[0]!);
    expect(cookie.name).toBe('ob.sid');
    expect(cookie.attributes.has('httponly')).toBe(true);
    expect(cookie.attributes.get('samesite')?.toLowerCase()).toBe('lax');
    expect(cookie.attributes.get('path')).toBe('/');
    expect(cookie.attributes.has('secure')).toBe(false);
    expect(cookie.attributes.has('domain')).toBe(false);
  });

  it('sets the cookie with Secure when PUBLIC_URL is https, though the listener itself speaks t.broker http', async () => {
    const browser = new TestBrowser();
    const { auth, state, authorizeUrl } = await startFlow(t.second, browser, 'jobber', 'acct-cookie-https', {
      return_to: RETURN_TO,
    });
    expect(authorizeUrl.searchParams.get('redirect_uri')).toBe('https://connect.example.com/callback/jobber');
    expect(auth.setCookies).toHaveLength(1);
    const cookie = parseSetCookie(auth.setCookies[0]!);
    expect(cookie.attributes.has('secure')).toBe(true);
    expect(cookie.attributes.has('httponly')).toBe(true);
    expect(cookie.attributes.get('samesite')?.toLowerCase()).toBe('lax');
    expect(cookie.attributes.get('path')).toBe('/');
    expect(auth.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);

    // The browser returns it on the provider's redirect back, and the flow completes.
    const done = await browser.get(callbackUrl(t.second, 'jobber', { code: 'code-cookie-https', state }));
    expect(done.status).toBe(303);
    expect(new URL(done.location!).searchParams.get('connected')).toBe('jobber');
  });

  it('sets no cookie and stores no session where no flow starts', async () => {
    const before = (await t.client.keys('ob:sess:*')).length;
    for (const path of [
      '/healthz',
      '/auth/jobber?session=unknown-token-000000000000',
      '/auth/jobber',
      '/callback/jobber?state=x&code=y',
      '/nowhere',
    ]) {
      const res = await new TestBrowser().get(`${t.broker.publicUrl}${path}`);
      expect(res.setCookies).toEqual([]);
    }
    expect((await t.client.keys('ob:sess:*')).length).toBe(before);
  });

  it('gives the browser a new session id at every flow start, and the old id no longer opens a session', async () => {
    const browser = new TestBrowser();
    const first = await startFlow(t.broker, browser, 'jobber', 'acct-regen-1', { return_to: RETURN_TO });
    const firstId = sessionIdOf(parseSetCookie(first.auth.setCookies[0]!).value);
    expect(await t.client.exists(`ob:sess:${firstId}`)).toBe(1);

    const second = await startFlow(t.broker, browser, 'jobber', 'acct-regen-2', { return_to: RETURN_TO });
    const secondId = sessionIdOf(parseSetCookie(second.auth.setCookies[0]!).value);
    expect(secondId).not.toBe(firstId);
    expect(await t.client.exists(`ob:sess:${firstId}`)).toBe(0);

    // Both flows still belong to this browser.
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-regen-1', state: first.state })))
        .status,
    ).toBe(303);
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-regen-2', state: second.state })))
        .status,
    ).toBe(303);
  });

  it("makes a session id planted in a victim's browser useless to the attacker who planted it (fixation)", async () => {
    const attacker = new TestBrowser();
    await startFlow(t.broker, attacker, 'jobber', 'acct-fixation-attacker');
    const planted = attacker.cookieHeader();

    // The victim's browser carries the attacker's cookie when it opens its own connect link.
    const victim = new TestBrowser();
    const link = await t.broker.connectLink('jobber', 'acct-fixation-victim', { return_to: RETURN_TO });
    const auth = await victim.get(onListener(t.broker, link), { cookie: planted });
    expect(auth.status).toBe(302);
    const state = new URL(auth.location!).searchParams.get('state')!;
    expect(auth.setCookies).toHaveLength(1);
    expect(sessionIdOf(parseSetCookie(auth.setCookies[0]!).value)).not.toBe(
      sessionIdOf(planted.split('=')[1]!),
    );

    // With the planted cookie, the attacker cannot finish (or hijack) the victim's flow.
    const hijack = await attacker.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-fixation-attacker', state }),
    );
    expect(hijack.status).toBe(400);
    expect(t.fake.tokenRequests.filter((r) => r.params.code === 'code-fixation-attacker')).toHaveLength(0);
    const own = await victim.get(callbackUrl(t.broker, 'jobber', { code: 'code-fixation-victim', state }));
    expect(own.status).toBe(303);
  });
});
