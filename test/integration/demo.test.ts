import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { TestBrowser } from '../helpers/browser';
import { useDemosOnRedis } from '../helpers/demo-fixture';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';

const ROOT = join(__dirname, '..', '..');

/** The hidden fields and buttons of the sandbox's consent form. */
function consentForm(html: string): { request: string; decisions: string[] } {
  const request = /name="request" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const decisions = [...html.matchAll(/<button type="submit" name="decision" value="([a-z]+)"/g)].map(
    (m) => m[1]!,
  );
  return { request, decisions };
}

describe('demo: the broker with its built-in sandbox provider', () => {
  const demos = useDemosOnRedis({ main: { keyPrefix: 'demo-test:' } });

  async function token(query = ''): Promise<{ status: number; body: any }> {
    const res = await fetch(
      `${demos.main.internalUrl}/internal/connections/sandbox/demo-user/token${query}`,
      {
        headers: { authorization: `Bearer ${demos.main.internalApiKey}` },
      },
    );
    return { status: res.status, body: await res.json() };
  }

  /** From the start page's button to the sandbox's consent page, as a browser goes. */
  async function openConsent(
    browser: TestBrowser,
  ): Promise<{ request: string; decisions: string[]; authorizeUrl: URL }> {
    const start = await browser.get(`${demos.main.publicUrl}/demo`);
    expect(start.status).toBe(200);
    expect(start.body).toContain('action="/demo/connect"');
    const connect = await browser.get(`${demos.main.publicUrl}/demo/connect`);
    expect(connect.status).toBe(302);
    expect(connect.location).toMatch(new RegExp(`^${demos.main.publicUrl}/auth/sandbox\\?session=`));
    const auth = await browser.get(connect.location!);
    expect(auth.status).toBe(302);
    const authorizeUrl = new URL(auth.location!);
    expect(authorizeUrl.pathname).toBe('/sandbox/authorize');
    expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
    const consent = await browser.get(authorizeUrl.toString());
    expect(consent.status).toBe(200);
    expect(consent.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(consent.body).toContain('Allow access to your Sandbox account?');
    return { ...consentForm(consent.body), authorizeUrl };
  }

  it('shows Deny and Allow; Deny comes back to the demo as access_denied and stores nothing', async () => {
    const browser = new TestBrowser();
    const { request, decisions } = await openConsent(browser);
    expect(decisions).toEqual(['allow', 'deny']);
    const denied = await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'deny',
    });
    expect(denied.status).toBe(302);
    const callback = new URL(denied.location!);
    expect(callback.pathname).toBe('/callback/sandbox');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('iss')).toBe(`${demos.main.publicUrl}/sandbox`);
    const back = await browser.get(denied.location!);
    expect(back.status).toBe(303);
    expect(new URL(back.location!).searchParams.get('error')).toBe('access_denied');
    const page = await browser.get(back.location!);
    expect(page.body).toContain('Connection cancelled');
    const answer = await token();
    expect([answer.status, answer.body.code]).toEqual([404, 'connection_not_found']);
  });

  it('Allow connects demo-user; the token API serves a token the sandbox API accepts; force_refresh rotates it', async () => {
    const browser = new TestBrowser();
    const { request } = await openConsent(browser);
    const allowed = await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'allow',
    });
    expect(allowed.status).toBe(302);
    const callback = await browser.get(allowed.location!);
    expect(callback.status).toBe(303);
    const done = new URL(callback.location!);
    expect(done.pathname).toBe('/demo/done');
    expect(done.searchParams.get('connected')).toBe('sandbox');
    expect(done.searchParams.get('connection_id')).toBe('demo-user');
    const page = await browser.get(callback.location!);
    expect(page.body).toContain('Sandbox is connected');
    expect(page.body).not.toContain(demos.main.internalApiKey);

    const first = await token();
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      auth_mode: 'oauth2',
      token_type: 'Bearer',
      scopes: ['profile', 'notes.read', 'notes.write'],
    });
    const me = await fetch(`${demos.main.publicUrl}/sandbox/api/me`, {
      headers: { authorization: `Bearer ${first.body.access_token}` },
    });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: 'demo-user' });

    const refreshed = await token('?force_refresh=true');
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(first.body.access_token);
    // Rotation kept: the stored refresh token is the new one, so a second refresh works too.
    const again = await token('?force_refresh=true');
    expect(again.status).toBe(200);
    const meta = await fetch(`${demos.main.internalUrl}/internal/connections/sandbox/demo-user`, {
      headers: { authorization: `Bearer ${demos.main.internalApiKey}` },
    });
    expect(await meta.json()).toMatchObject({
      status: 'active',
      refresh_failures: 0,
      end_user: { id: 'demo-user', display_name: 'Demo User' },
      tags: { source: 'demo' },
    });
  });

  it('shows "Try it through the proxy", and its commands reach the sandbox notes API with the stored token', async () => {
    const page = await (
      await fetch(`${demos.main.publicUrl}/demo/done?connected=sandbox&connection_id=demo-user`)
    ).text();
    expect(page).toContain('Try it through the proxy');
    expect(page).toContain(`${demos.main.internalUrl}/internal/proxy/sandbox/demo-user/notes`);
    expect(page).not.toContain(demos.main.internalApiKey);
    expect(demos.main.proxyCommand({ withKey: true, post: true })).toContain(demos.main.internalApiKey);

    const url = `${demos.main.internalUrl}/internal/proxy/sandbox/demo-user/notes`;
    const auth = { authorization: `Bearer ${demos.main.internalApiKey}` };
    const created = await fetch(url, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello through the proxy' }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: 1, text: 'hello through the proxy' });
    const listed = await fetch(url, { headers: auth });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toMatchObject({ notes: [{ id: 1, text: 'hello through the proxy' }] });
    // Without the broker's credential the sandbox API refuses.
    expect((await fetch(`${demos.main.publicUrl}/sandbox/api/notes`)).status).toBe(401);
  });

  it('answers a consent request only once: a replayed Allow gets an expired page', async () => {
    const browser = new TestBrowser();
    const { request } = await openConsent(browser);
    expect(
      (await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, { request, decision: 'allow' }))
        .status,
    ).toBe(302);
    const replay = await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'allow',
    });
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('This request has expired');
  });

  it('lists the sandbox as the only enabled provider', async () => {
    const res = await fetch(`${demos.main.internalUrl}/internal/providers`, {
      headers: { authorization: `Bearer ${demos.main.internalApiKey}` },
    });
    const body = (await res.json()) as { providers: Array<{ id: string; issuer: string }> };
    expect(body.providers.map((p) => p.id)).toEqual(['sandbox']);
    expect(body.providers[0]!.issuer).toBe(`${demos.main.publicUrl}/sandbox`);
  });

  describe('the sandbox authorization server', () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const basic = (): string => {
      const p = demos.main.broker.registry.get('sandbox')!;
      return `Basic ${Buffer.from(`${p.client_id}:${p.client_secret}`).toString('base64')}`;
    };
    const redirectUri = (): string => `${demos.main.publicUrl}/callback/sandbox`;

    async function code(): Promise<string> {
      const browser = new TestBrowser();
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: 'oauth-broker-demo',
        redirect_uri: redirectUri(),
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: 'profile',
      });
      const consent = await browser.get(`${demos.main.publicUrl}/sandbox/authorize?${q}`);
      const allowed = await browser.postForm(`${demos.main.publicUrl}/sandbox/authorize`, {
        request: consentForm(consent.body).request,
        decision: 'allow',
      });
      return new URL(allowed.location!).searchParams.get('code')!;
    }

    async function tokenRequest(
      params: Record<string, string>,
      authorization = basic(),
    ): Promise<{ status: number; body: any }> {
      const res = await fetch(`${demos.main.publicUrl}/sandbox/token`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(params).toString(),
      });
      return { status: res.status, body: await res.json().catch(() => undefined) };
    }

    it('refuses a code without the right PKCE verifier (RFC 7636 §4.6), and a code used twice', async () => {
      const wrong = await tokenRequest({
        grant_type: 'authorization_code',
        code: await code(),
        redirect_uri: redirectUri(),
        code_verifier: randomBytes(32).toString('base64url'),
      });
      expect([wrong.status, wrong.body.error]).toEqual([400, 'invalid_grant']);
      const c = await code();
      const right = await tokenRequest({
        grant_type: 'authorization_code',
        code: c,
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      });
      expect(right.status).toBe(200);
      expect(right.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'profile' });
      const twice = await tokenRequest({
        grant_type: 'authorization_code',
        code: c,
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      });
      expect([twice.status, twice.body.error]).toEqual([400, 'invalid_grant']);
    });

    it('rotates refresh tokens: the old one dies when a new one is issued; a revoked one dies too', async () => {
      const issued = await tokenRequest({
        grant_type: 'authorization_code',
        code: await code(),
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      });
      const second = await tokenRequest({
        grant_type: 'refresh_token',
        refresh_token: issued.body.refresh_token,
      });
      expect(second.status).toBe(200);
      expect(second.body.refresh_token).not.toBe(issued.body.refresh_token);
      const old = await tokenRequest({
        grant_type: 'refresh_token',
        refresh_token: issued.body.refresh_token,
      });
      expect([old.status, old.body.error]).toEqual([400, 'invalid_grant']);
      const revoke = await fetch(`${demos.main.publicUrl}/sandbox/revoke`, {
        method: 'POST',
        headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: second.body.refresh_token }).toString(),
      });
      expect(revoke.status).toBe(200);
      const revoked = await tokenRequest({
        grant_type: 'refresh_token',
        refresh_token: second.body.refresh_token,
      });
      expect([revoked.status, revoked.body.error]).toEqual([400, 'invalid_grant']);
    });

    it('refuses a wrong client secret with 401 invalid_client', async () => {
      const res = await tokenRequest(
        { grant_type: 'refresh_token', refresh_token: 'x' },
        `Basic ${Buffer.from('oauth-broker-demo:nope').toString('base64')}`,
      );
      expect([res.status, res.body.error]).toEqual([401, 'invalid_client']);
    });

    it('shows a page, and redirects nowhere, for an unregistered redirect_uri; requires PKCE', async () => {
      const browser = new TestBrowser();
      const evil = new URLSearchParams({
        response_type: 'code',
        client_id: 'oauth-broker-demo',
        redirect_uri: 'https://evil.example/cb',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      const page = await browser.get(`${demos.main.publicUrl}/sandbox/authorize?${evil}`);
      expect([page.status, page.location]).toEqual([400, null]);
      const noPkce = new URLSearchParams({
        response_type: 'code',
        client_id: 'oauth-broker-demo',
        redirect_uri: redirectUri(),
        state: 's',
      });
      const refused = await browser.get(`${demos.main.publicUrl}/sandbox/authorize?${noPkce}`);
      expect(refused.status).toBe(302);
      expect(new URL(refused.location!).searchParams.get('error')).toBe('invalid_request');
    });
  });
});

describe('npm run demo (src/demo/main.ts)', () => {
  function run(env: Record<string, string>): {
    child: ChildProcess;
    output: () => string;
    exited: Promise<number | null>;
  } {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/demo/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    child.stderr!.on('data', (d) => (out += String(d)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => out, exited };
  }

  it('says exactly how to start a Redis, and exits non-zero, when none answers', async () => {
    const demo = run({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(await demo.exited).not.toBe(0);
    expect(demo.output()).toContain('redis-server --daemonize yes');
    expect(demo.output()).toContain('docker run -p 6379:6379 redis:7');
  });

  it('prints the connect link and the curl command, serves them, and on SIGINT removes its keys and exits 0', async () => {
    const redis = await TestRedis.start();
    const [publicPort, internalPort] = [await freePort(), await freePort()];
    const demo = run({ REDIS_URL: redis.url, PORT: String(publicPort), INTERNAL_PORT: String(internalPort) });
    const client = redis.client();
    try {
      const deadline = Date.now() + 20_000;
      while (
        !demo.output().includes('Press Ctrl-C') &&
        Date.now() < deadline &&
        demo.child.exitCode === null
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const out = demo.output();
      expect(out).toContain(`http://localhost:${publicPort}/demo`);
      const curl =
        /curl -s -H "Authorization: Bearer ([^"]+)" "(http:\/\/127\.0\.0\.1:\d+\/internal\/connections\/sandbox\/demo-user\/token)"/.exec(
          out,
        );
      expect(curl).not.toBeNull();

      // The printed command works: before any connect it says the connection does not exist yet.
      const res = await fetch(curl![2]!, { headers: { authorization: `Bearer ${curl![1]}` } });
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([
        404,
        'connection_not_found',
      ]);
      const link = await fetch(`http://127.0.0.1:${publicPort}/demo/connect`, { redirect: 'manual' });
      expect(link.status).toBe(302);
      expect((await client.keys('demo:*')).length).toBeGreaterThan(0);

      demo.child.kill('SIGINT');
      expect(await demo.exited).toBe(0);
      expect(await client.keys('demo:*')).toEqual([]);
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
      client.disconnect();
      await redis.close();
    }
  });
});

describe('the sandbox stays out of the broker', () => {
  it('no module outside src/demo imports the demo (the broker never mounts the sandbox)', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (path !== join(ROOT, 'src', 'demo')) walk(path);
        } else if (path.endsWith('.ts') && /from '[./]+\/demo(\/|')/.test(readFileSync(path, 'utf8'))) {
          offenders.push(relative(ROOT, path));
        }
      }
    };
    walk(join(ROOT, 'src'));
    expect(offenders).toEqual([]);
  });
});
