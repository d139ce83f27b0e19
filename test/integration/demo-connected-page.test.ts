import { TestBrowser } from '../helpers/browser';
import { useDemosOnRedis } from '../helpers/demo-fixture';

const USER_KEY = 'a-users-own-internal-key-0123456789abcdef';
const USER_SECRET = 'a-users-own-session-secret-0123456789abcdef';
const USER_DATA_KEY = `mine:${Buffer.alloc(32, 9).toString('base64')}`;

describe('demo: the connected page names the connection made; the user’s variables are the ones used', () => {
  const demos = useDemosOnRedis({
    main: {
      keyPrefix: 'demo-page-test:',
      env: {
        INTERNAL_API_KEYS: USER_KEY,
        ALLOWED_RETURN_URLS: 'http://127.0.0.1:9/myapp',
        SESSION_SECRET: USER_SECRET,
        TOKEN_ENCRYPTION_KEYS: USER_DATA_KEY,
      },
    },
  });

  /** Through the sandbox's consent with Allow, from a connect link; answers the page the broker returns to. */
  async function allow(browser: TestBrowser, link: string): Promise<{ location: URL; body: string }> {
    const auth = await browser.get(link);
    const consent = await browser.get(auth.location!);
    const request = /name="request" value="([^"]+)"/.exec(consent.body)![1]!;
    const allowed = await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'allow',
    });
    const callback = await browser.get(allowed.location!);
    expect(callback.status).toBe(303);
    const page = await browser.get(callback.location!);
    return { location: new URL(callback.location!), body: page.body };
  }

  it('runs with the user’s key, session secret and data key, not generated ones', async () => {
    expect(demos.main.internalApiKey).toBe(USER_KEY);
    expect(demos.main.keyFromUser).toBe(true);
    expect(demos.main.config.sessionSecrets).toEqual([USER_SECRET]);
    expect(demos.main.settings.map((s) => [s.name, s.source])).toEqual([
      ['INTERNAL_API_KEYS', 'environment'],
      ['ALLOWED_RETURN_URLS', 'environment'],
      ['PORT', 'default'],
      ['INTERNAL_PORT', 'default'],
      ['SESSION_SECRET', 'environment'],
      ['TOKEN_ENCRYPTION_KEYS', 'environment'],
    ]);
    // The terminal's commands never carry a key the user set.
    expect(demos.main.tokenCommand({ withKey: true })).not.toContain(USER_KEY);
    const tokens = await fetch(`${demos.main.internalUrl}/internal/providers`, {
      headers: { authorization: `Bearer ${USER_KEY}` },
    });
    expect(tokens.status).toBe(200);
  });

  it('the start page’s link with ?connection_id= connects that id, and the page says so', async () => {
    const browser = new TestBrowser();
    const connect = await browser.get(`${demos.main.publicUrl}/demo/connect?connection_id=alice`);
    expect(connect.status).toBe(302);
    const { location, body } = await allow(browser, connect.location!);
    expect(location.searchParams.get('connection_id')).toBe('alice');
    expect(body).toContain('Sandbox is connected');
    expect(body).toContain('<code>alice</code>');
    expect(body).toContain('/internal/connections/sandbox/alice/token');
    expect(body).not.toContain('demo-user');
    // Sealed under the user's data key.
    const meta = await fetch(`${demos.main.internalUrl}/internal/connections/sandbox/alice`, {
      headers: { authorization: `Bearer ${USER_KEY}` },
    });
    expect(await meta.json()).toMatchObject({ key_id: 'mine', status: 'active' });
  });

  it('a connect session made elsewhere (a service’s own) that returns to the demo shows its own connection', async () => {
    const res = await fetch(`${demos.main.internalUrl}/internal/connect-sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        provider: 'sandbox',
        connection_id: 'bob@acme',
        return_to: `${demos.main.publicUrl}/demo/done`,
      }),
    });
    expect(res.status).toBe(201);
    const { url } = (await res.json()) as { url: string };
    const { body } = await allow(new TestBrowser(), url);
    expect(body).toContain('<code>bob@acme</code>');
    expect(body).not.toContain('demo-user');
  });

  it('a return naming a connection that does not exist is not shown as connected', async () => {
    const page = await new TestBrowser().get(
      `${demos.main.publicUrl}/demo/done?connected=sandbox&connection_id=nobody`,
    );
    expect(page.body).toContain('The connection failed');
    expect(page.body).toContain('connection_not_found');
    expect(page.body).not.toContain('Sandbox is connected');
  });

  it('refuses a connection id outside the alphabet with a page, not a 500', async () => {
    const page = await new TestBrowser().get(
      `${demos.main.publicUrl}/demo/connect?connection_id=${'x'.repeat(300)}`,
    );
    expect(page.status).toBe(400);
    expect(page.body).toContain('invalid_request');
  });
});
