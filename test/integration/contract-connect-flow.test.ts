import { TestBrowser } from '../helpers/browser';
import { dumpRedis } from '../helpers/contract-process';
import { FakeProvider } from '../helpers/fake-provider';
import { connectionFootprint } from '../helpers/flow-steps';
import {
  ISSUER,
  RETURN_TO,
  ISO_8601,
  BASE64URL,
  sha256,
  expectProblem,
  cookieAttributes,
  openFlow,
  callback,
  useContractSuite,
  expectKeptOut,
  verifiersSeenBy,
} from '../helpers/contract-suite';

/**
 * The connect flow of the built broker, from outside (docs/api.md, the connect flow): connect
 * links, the redirect to the provider, the session cookie, the callback and every way it fails, as a
 * browser and the app's backend see them, with what reaches the provider and what sits in Redis.
 */
describe('contract, from outside on node dist/main.js: the connect flow', () => {
  const suite = useContractSuite(2);

  describe('connect flow', () => {
    it('answers 201 with a PUBLIC_URL link holding a fresh ≥128-bit token and expires_at CONNECT_SESSION_TTL (600 s) ahead; Redis holds only its SHA-256', async () => {
      const before = Date.now();
      const first = await suite.b1.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'link-1' },
      });
      const after = Date.now();
      const second = await suite.b1.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'link-1' },
      });
      expect([first.status, second.status]).toEqual([201, 201]);
      const tokens = [first, second].map((res) => {
        const m = /^(.+)\/auth\/jobber\?session=([^&]+)$/.exec(res.body.url as string);
        expect(m?.[1]).toBe(suite.b1.publicUrl);
        return m![2]!;
      });
      for (const token of tokens) {
        expect(token).toMatch(BASE64URL);
        expect(token.length).toBeGreaterThanOrEqual(22);
      }
      expect(tokens[0]).not.toBe(tokens[1]);
      expect(first.body.expires_at).toMatch(ISO_8601);
      const expires = Date.parse(first.body.expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + 600_000 - 100);
      expect(expires).toBeLessThanOrEqual(after + 600_000 + 100);

      const dump = [...(await dumpRedis(suite.redisClient)).entries()]
        .map(([k, v]) => `${k} ${v}`)
        .join('\n');
      for (const token of tokens) {
        expect(dump).not.toContain(token);
        expect(dump.includes(sha256(token)) || dump.includes(sha256(token, 'base64url'))).toBe(true);
      }
    });

    it('redirects once to the authorization URL with response_type, client_id, redirect_uri, state, code_challenge and S256; the link then answers 400, as a missing or unknown one does', async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(suite.b1, browser, 'jobber', 'acct-params');
      const q = flow.authorizeUrl.searchParams;
      expect(`${flow.authorizeUrl.origin}${flow.authorizeUrl.pathname}`).toBe(`${suite.fake.url}/authorize`);
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe('jobber-client');
      expect(q.get('redirect_uri')).toBe(`${suite.b1.publicUrl}/callback/jobber`);
      expect(flow.state).toMatch(BASE64URL);
      expect(flow.state.length).toBeGreaterThanOrEqual(22);
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('code_challenge_method')).toBe('S256');
      // Jobber takes no scope parameter (its scopes live in the app's settings).
      expect(q.has('scope')).toBe(false);

      const url = new URL(flow.link);
      const again = await new TestBrowser().get(`${suite.b1.publicUrl}${url.pathname}${url.search}`);
      expect(again.status).toBe(400);
      expect(again.headers.get('content-type')).toMatch(/^text\/html/);
      expect(again.body).toMatch(/link/i);
      for (const path of [
        '/auth/jobber',
        '/auth/jobber?session=',
        `/auth/jobber?session=${'A'.repeat(43)}`,
      ]) {
        const page = await new TestBrowser().get(`${suite.b1.publicUrl}${path}`);
        expect({ path, status: page.status }).toEqual({ path, status: 400 });
      }

      // The callback exchanges the code with the verifier whose S256 is the challenge, at the same redirect_uri.
      const done = await callback(suite.b1, browser, 'jobber', { code: 'code-params', state: flow.state });
      expect(done.status).toBe(200);
      const exchange = suite.fake.tokenRequests.find((r) => r.params.code === 'code-params')!;
      expect(exchange.params.grant_type).toBe('authorization_code');
      expect(exchange.params.redirect_uri).toBe(`${suite.b1.publicUrl}/callback/jobber`);
      expect(sha256(exchange.params.code_verifier ?? '', 'base64url')).toBe(q.get('code_challenge'));
    });

    it('sets the session cookie HttpOnly, SameSite=Lax, Path=/, without Secure under an http PUBLIC_URL and with it under an https one (with a path)', async () => {
      const flow = await openFlow(suite.b1, new TestBrowser(), 'jobber', 'acct-cookie');
      expect(flow.auth.setCookies).toHaveLength(1);
      const plain = cookieAttributes(flow.auth.setCookies[0]!);
      expect(plain).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/']));
      expect(plain).not.toContain('secure');

      const link = await suite.b2.connectLink('jobber', 'acct-cookie');
      expect(link.startsWith('https://connect2.example.test/oauth/auth/jobber?session=')).toBe(true);
      // The proxy strips /oauth before the listener.
      const auth = await new TestBrowser().get(`${suite.b2.publicUrl}/auth/jobber${new URL(link).search}`);
      expect(auth.status).toBe(302);
      expect(new URL(auth.location!).searchParams.get('redirect_uri')).toBe(
        'https://connect2.example.test/oauth/callback/jobber',
      );
      const secure = cookieAttributes(auth.setCookies[0]!);
      expect(secure).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/', 'secure']));
    });

    it('honours CONNECT_SESSION_TTL=1: expires_at one second ahead, and the link answers 400 once that has passed', async () => {
      const before = Date.now();
      const res = await suite.b2.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'ttl-1' },
      });
      const after = Date.now();
      expect(res.status).toBe(201);
      const expires = Date.parse(res.body.expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + 1000 - 100);
      expect(expires).toBeLessThanOrEqual(after + 1000 + 100);
      await new Promise((r) => setTimeout(r, 2200));
      const url = new URL(res.body.url as string);
      const late = await new TestBrowser().get(`${suite.b2.publicUrl}/auth/jobber${url.search}`);
      expect(late.status).toBe(400);
    });

    it("keeps a link opened under another provider's /auth/ path unused: 400 there, then 302 under its own", async () => {
      const link = new URL(await suite.b1.connectLink('jobber', 'acct-mixed'));
      const browser = new TestBrowser();
      const sessions = async () => (await suite.redisClient.keys('ob:sess:*')).length;
      const before = await sessions();
      const wrong = await browser.get(`${suite.b1.publicUrl}/auth/process-street${link.search}`);
      expect(wrong.status).toBe(400);
      expect(suite.fake.requests.filter((r) => r.path === '/authorize')).toHaveLength(0);
      // No session is left behind, and the browser gets no cookie.
      expect(wrong.setCookies).toEqual([]);
      expect(await sessions()).toBe(before);
      const right = await browser.get(`${suite.b1.publicUrl}/auth/jobber${link.search}`);
      expect(right.status).toBe(302);
      expect(right.location!.startsWith(`${suite.fake.url}/authorize?`)).toBe(true);
      expect(await sessions()).toBe(before + 1);
    });

    it("sends a connect session's scopes instead of the defaults, joined with the provider's scope_separator, and answers them as the token's scopes", async () => {
      const defaults = await openFlow(suite.b1, new TestBrowser(), 'process-street', 'acct-scopes-default');
      expect(defaults.authorizeUrl.searchParams.get('scope')).toBe('read,write');

      const browser = new TestBrowser();
      const chosen = await openFlow(suite.b1, browser, 'process-street', 'acct-scopes', {
        scopes: ['files:read', 'users'],
      });
      expect(chosen.authorizeUrl.searchParams.get('scope')).toBe('files:read,users');
      expect(
        (await callback(suite.b1, browser, 'process-street', { code: 'code-scopes', state: chosen.state }))
          .status,
      ).toBe(200);
      const token = await suite.b1.api('/internal/connections/process-street/acct-scopes/token');
      expect(token.body.scopes).toEqual(['files:read', 'users']);

      // BEXIO_SCOPES (comma and space separated) replaces bexio's defaults, sent space separated.
      const bexio = await openFlow(suite.b1, new TestBrowser(), 'bexio', 'acct-bexio-scopes');
      expect(bexio.authorizeUrl.searchParams.get('scope')).toBe('openid contact_show offline_access');
    });

    it('finishes several flows under way in one browser, in any order', async () => {
      const browser = new TestBrowser();
      const a = await openFlow(suite.b1, browser, 'jobber', 'multi-a');
      const b = await openFlow(suite.b1, browser, 'process-street', 'multi-b', { return_to: RETURN_TO });
      const second = await callback(suite.b1, browser, 'process-street', {
        code: 'code-multi-b',
        state: b.state,
      });
      expect(second.status).toBe(303);
      const first = await callback(suite.b1, browser, 'jobber', { code: 'code-multi-a', state: a.state });
      expect(first.status).toBe(200);
      expect((await suite.b1.api('/internal/connections/jobber/multi-a')).status).toBe(200);
      expect((await suite.b1.api('/internal/connections/process-street/multi-b')).status).toBe(200);
    });

    it('answers 303 to return_to with connected and connection_id added to the query it already has (kept as it was), before its fragment', async () => {
      const id = 'a.B_9:x@y-z';
      const returnTo = `${RETURN_TO}?tab=a%20b&flag#top`;
      const browser = new TestBrowser();
      const flow = await openFlow(suite.b1, browser, 'jobber', id, { return_to: returnTo });
      const done = await callback(suite.b1, browser, 'jobber', { code: 'code-return', state: flow.state });
      expect(done.status).toBe(303);
      const location = done.location!;
      expect(location.startsWith(`${RETURN_TO}?tab=a%20b&flag&`)).toBe(true);
      expect(location.endsWith('#top')).toBe(true);
      const back = new URL(location);
      expect(back.searchParams.get('connected')).toBe('jobber');
      expect(back.searchParams.get('connection_id')).toBe(id);
      // The id as it came back works as a path segment of the token API, encoded or not.
      for (const segment of [encodeURIComponent(id), id]) {
        const token = await suite.b1.api(`/internal/connections/jobber/${segment}/token`);
        expect({ segment, status: token.status }).toEqual({ segment, status: 200 });
      }
    });

    it('shows a short HTML page after a callback without return_to', async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(suite.b1, browser, 'jobber', 'acct-page');
      const done = await callback(suite.b1, browser, 'jobber', { code: 'code-page', state: flow.state });
      expect(done.status).toBe(200);
      expect(done.headers.get('content-type')).toMatch(/^text\/html/);
      expect(done.body).toContain('acct-page');
    });

    it('answers 400 to a callback matched to no flow of this browser, and calls no token endpoint', async () => {
      const before = suite.fake.tokenRequests.length;
      const browser = new TestBrowser();
      const flow = await openFlow(suite.b1, browser, 'jobber', 'acct-unmatched', { return_to: RETURN_TO });
      const noCookie = await callback(suite.b1, new TestBrowser(), 'jobber', {
        code: 'code-unmatched',
        state: flow.state,
      });
      const unknownState = await callback(suite.b1, browser, 'jobber', {
        code: 'code-unmatched',
        state: 'x'.repeat(43),
      });
      const otherProvider = await callback(suite.b1, browser, 'process-street', {
        code: 'code-unmatched',
        state: flow.state,
      });
      expect([noCookie.status, unknownState.status, otherProvider.status]).toEqual([400, 400, 400]);
      expect(suite.fake.tokenRequests.length).toBe(before);
    });

    describe('every callback failure redirects with error=, uses the flow up, and stores or overwrites nothing', () => {
      let kept: { access_token: string; updated_at: string };

      beforeAll(async () => {
        const browser = new TestBrowser();
        const flow = await openFlow(suite.b1, browser, 'bexio', 'acct-keep');
        const done = await callback(suite.b1, browser, 'bexio', {
          code: 'code-keep',
          state: flow.state,
          iss: ISSUER,
        });
        expect(done.status).toBe(200);
        const token = await suite.b1.api('/internal/connections/bexio/acct-keep/token');
        const meta = await suite.b1.api('/internal/connections/bexio/acct-keep');
        kept = { access_token: token.body.access_token, updated_at: meta.body.updated_at };
      });

      interface FailureCase {
        what: string;
        query: Record<string, string>;
        code: string;
        arrange?: (f: FakeProvider) => void;
      }
      const cases: FailureCase[] = [
        { what: 'the user said no', query: { error: 'access_denied', iss: ISSUER }, code: 'access_denied' },
        {
          what: 'iss names another server',
          query: { code: 'code-f1', iss: 'https://evil.example.test' },
          code: 'invalid_issuer',
        },
        { what: 'iss is missing', query: { code: 'code-f2' }, code: 'invalid_issuer' },
        { what: 'an error response lacks iss', query: { error: 'access_denied' }, code: 'invalid_issuer' },
        {
          what: 'the provider sends another error',
          query: { error: 'server_error', iss: ISSUER },
          code: 'provider_error',
        },
        { what: 'neither code nor error comes back', query: { iss: ISSUER }, code: 'provider_error' },
        {
          what: 'the token endpoint refuses the code',
          query: { code: 'code-f3', iss: ISSUER },
          code: 'token_exchange_failed',
          arrange: (f) => f.failNext(1, 400, { error: 'invalid_grant' }),
        },
        {
          what: 'the token endpoint fails',
          query: { code: 'code-f4', iss: ISSUER },
          code: 'provider_unavailable',
          arrange: (f) => f.failNext(1, 503, { error: 'temporarily_unavailable' }),
        },
        {
          what: 'the token endpoint answers garbage',
          query: { code: 'code-f5', iss: ISSUER },
          code: 'provider_unavailable',
          arrange: (f) => f.failNext(1, 200, '<html>oops</html>', 'text/html'),
        },
      ];

      it.each(cases)('when $what: error=$code', async ({ query, code, arrange }) => {
        for (const id of ['acct-keep', 'acct-never']) {
          const browser = new TestBrowser();
          const flow = await openFlow(suite.b1, browser, 'bexio', id, { return_to: `${RETURN_TO}?from=app` });
          arrange?.(suite.fake);
          const failed = await callback(suite.b1, browser, 'bexio', { state: flow.state, ...query });
          expect(failed.status).toBe(303);
          const back = new URL(failed.location!);
          expect(`${back.origin}${back.pathname}`).toBe(RETURN_TO);
          expect(back.searchParams.get('error')).toBe(code);
          expect(back.searchParams.get('from')).toBe('app');
          expect(back.searchParams.has('connected')).toBe(false);

          // Used up: the same callback again matches nothing and calls no token endpoint.
          const exchanges = suite.fake.tokenRequests.length;
          const replay = await callback(suite.b1, browser, 'bexio', { state: flow.state, ...query });
          expect(replay.status).toBe(400);
          expect(suite.fake.tokenRequests.length).toBe(exchanges);
        }
        const token = await suite.b1.api('/internal/connections/bexio/acct-keep/token');
        const meta = await suite.b1.api('/internal/connections/bexio/acct-keep');
        expect({
          access_token: token.body.access_token,
          updated_at: meta.body.updated_at,
          status: meta.body.status,
        }).toEqual({ ...kept, status: 'active' });
        expectProblem(
          await suite.b1.api('/internal/connections/bexio/acct-never'),
          404,
          'connection_not_found',
        );
        expect((await connectionFootprint(suite.redisClient, 'bexio', 'acct-never')).keys).toEqual([]);
      });

      it('shows a page instead when the flow has no return_to', async () => {
        const browser = new TestBrowser();
        const flow = await openFlow(suite.b1, browser, 'bexio', 'acct-never');
        const failed = await callback(suite.b1, browser, 'bexio', {
          state: flow.state,
          error: 'access_denied',
          iss: ISSUER,
        });
        expect(failed.status).toBeGreaterThanOrEqual(400);
        expect(failed.headers.get('content-type')).toMatch(/^text\/html/);
        expectProblem(
          await suite.b1.api('/internal/connections/bexio/acct-never'),
          404,
          'connection_not_found',
        );
      });

      it('replaces the tokens on a successful reconnect, starting the record afresh with created_at kept', async () => {
        const refreshed = await suite.b1.api(
          '/internal/connections/bexio/acct-keep/token?force_refresh=true',
        );
        const before = await suite.b1.api('/internal/connections/bexio/acct-keep');
        expect(before.body.last_refreshed_at).not.toBeNull();
        const browser = new TestBrowser();
        const flow = await openFlow(suite.b1, browser, 'bexio', 'acct-keep');
        expect(
          (await callback(suite.b1, browser, 'bexio', { code: 'code-again', state: flow.state, iss: ISSUER }))
            .status,
        ).toBe(200);
        const token = await suite.b1.api('/internal/connections/bexio/acct-keep/token');
        expect(token.body.access_token).not.toBe(refreshed.body.access_token);
        expect(suite.fake.issued[suite.fake.issued.length - 1]!.access_token).toBe(token.body.access_token);
        const after = await suite.b1.api('/internal/connections/bexio/acct-keep');
        expect(after.body).toMatchObject({
          created_at: before.body.created_at,
          status: 'active',
          refresh_failures: 0,
          last_error: null,
          last_refreshed_at: null,
        });
      });
    });
  });

  describe('what the connect flow leaves behind', () => {
    it('writes no issued token, code or PKCE verifier to Redis, a log line or /metrics', async () => {
      const secrets = suite.fake.issued
        .flatMap((t) => [t.access_token, t.refresh_token ?? ''])
        .filter(Boolean);
      expect(secrets.length).toBeGreaterThan(4);
      const verifiers = verifiersSeenBy(suite.fake);
      expect(verifiers.length).toBeGreaterThan(0);
      await expectKeptOut(suite, secrets, [...verifiers, 'code-keep', 'code-multi-a']);
    });
  });
});
