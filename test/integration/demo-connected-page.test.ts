import { Demo } from '../../src/demo/create-demo';
import { TestBrowser } from '../helpers/browser';
import { RunningDemo, startDemo, stopDemo } from '../helpers/demo-fixture';
import { TestRedis } from '../helpers/redis-server';

const USER_KEY = 'a-users-own-internal-key-0123456789abcdef';
const USER_SECRET = 'a-users-own-session-secret-0123456789abcdef';
const USER_DATA_KEY = `mine:${Buffer.alloc(32, 9).toString('base64')}`;

describe('demo: the connected page names the connection made; the user’s variables are the ones used', () => {
  let redis: TestRedis;
  let demo: Demo;
  let running: RunningDemo;

  beforeAll(async () => {
    redis = await TestRedis.start();
    running = await startDemo(redis.url, 'demo-page-test:', {
      env: {
        INTERNAL_API_KEYS: USER_KEY,
        ALLOWED_RETURN_URLS: 'http://127.0.0.1:9/myapp',
        SESSION_SECRET: USER_SECRET,
        TOKEN_ENCRYPTION_KEYS: USER_DATA_KEY,
      },
    });
    demo = running.demo;
  });

  afterAll(async () => {
    await stopDemo(running);
    await redis.close();
  });

  /** Through the sandbox's consent with Allow, from a connect link; answers the page the broker returns to. */
  async function allow(browser: TestBrowser, link: string): Promise<{ location: URL; body: string }> {
    const auth = await browser.get(link);
    const consent = await browser.get(auth.location!);
    const request = /name="request" value="([^"]+)"/.exec(consent.body)![1]!;
    const allowed = await browser.postForm(`${demo.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'allow',
    });
    const callback = await browser.get(allowed.location!);
    expect(callback.status).toBe(303);
    const page = await browser.get(callback.location!);
    return { location: new URL(callback.location!), body: page.body };
  }

  it('runs with the user’s key, session secret and data key, not generated ones', async () => {
    expect(demo.internalApiKey).toBe(USER_KEY);
    expect(demo.keyFromUser).toBe(true);
    expect(demo.config.sessionSecrets).toEqual([USER_SECRET]);
    expect(demo.settings.map((s) => [s.name, s.source])).toEqual([
      ['INTERNAL_API_KEYS', 'environment'],
      ['ALLOWED_RETURN_URLS', 'environment'],
      ['PORT', 'default'],
      ['INTERNAL_PORT', 'default'],
      ['SESSION_SECRET', 'environment'],
      ['TOKEN_ENCRYPTION_KEYS', 'environment'],
    ]);
    // The terminal's commands never carry a key the user set.
    expect(demo.tokenCommand({ withKey: true })).not.toContain(USER_KEY);
    const tokens = await fetch(`${demo.internalUrl}/internal/providers`, {
      headers: { authorization: `Bearer ${USER_KEY}` },
    });
    expect(tokens.status).toBe(200);
  });

  it('the start page’s link with ?connection_id= connects that id, and the page says so', async () => {
    const browser = new TestBrowser();
    const connect = await browser.get(`${demo.publicUrl}/demo/connect?connection_id=alice`);
    expect(connect.status).toBe(302);
    const { location, body } = await allow(browser, connect.location!);
    expect(location.searchParams.get('connection_id')).toBe('alice');
    expect(body).toContain('Sandbox is connected');
    expect(body).toContain('<code>alice</code>');
    expect(body).toContain('/internal/connections/sandbox/alice/token');
    expect(body).not.toContain('demo-user');
    // Sealed under the user's data key.
    const meta = await fetch(`${demo.internalUrl}/internal/connections/sandbox/alice`, {
      headers: { authorization: `Bearer ${USER_KEY}` },
    });
    expect(await meta.json()).toMatchObject({ key_id: 'mine', status: 'active' });
  });

  it('a connect session made elsewhere (a service’s own) that returns to the demo shows its own connection', async () => {
    const res = await fetch(`${demo.internalUrl}/internal/connect-sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        provider: 'sandbox',
        connection_id: 'bob@acme',
        return_to: `${demo.publicUrl}/demo/done`,
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
      `${demo.publicUrl}/demo/done?connected=sandbox&connection_id=nobody`,
    );
    expect(page.body).toContain('The connection failed');
    expect(page.body).toContain('connection_not_found');
    expect(page.body).not.toContain('Sandbox is connected');
  });

  it('refuses a connection id outside the alphabet with a page, not a 500', async () => {
    const page = await new TestBrowser().get(
      `${demo.publicUrl}/demo/connect?connection_id=${'x'.repeat(300)}`,
    );
    expect(page.status).toBe(400);
    expect(page.body).toContain('invalid_request');
  });
});
