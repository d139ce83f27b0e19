import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener, startFlow } from '../helpers/flow-steps';

/**
 * RFC 9700 §4.11 (open redirectors): `return_to` must be one of ALLOWED_RETURN_URLS, compared as
 * scheme, host and port exactly plus a path prefix at a `/` boundary. Everything else is refused
 * with 400 invalid_request when the connect session is created, and no session is stored.
 */
const ALLOWED = 'https://app.example.com/integrations,https://other.example.com,http://localhost:8080/cb';

const REFUSED: string[] = [
  // scheme-relative and backslash tricks
  '//evil.com',
  '//evil.com/integrations',
  '///evil.com/integrations',
  '/\\evil.com',
  '\\\\evil.com',
  '/integrations',
  'https:/\\evil.com/integrations',
  'https://app.example.com\\@evil.com/integrations',
  'https://app.example.com/integrations\\..\\admin',
  // userinfo and look-alike hosts
  'https://app.example.com@evil.com/integrations',
  'https://app.example.com:443@evil.com/integrations',
  'https://user@app.example.com/integrations',
  'https://user:pass@app.example.com/integrations',
  'https://app.example.com.evil.com/integrations',
  'https://app.example.com./integrations',
  'https://evilapp.example.com/integrations',
  'https://app.example.com\u3002evil.com/integrations',
  'https://evil.com/https://app.example.com/integrations',
  'https://evil.com/?https://app.example.com/integrations',
  'https://evil.com#https://app.example.com/integrations',
  // path prefix only at a / boundary
  'https://app.example.com/integrations-evil',
  'https://app.example.com/integrationsevil',
  'https://app.example.com/integration',
  'https://app.example.com/Integrations',
  'https://app.example.com/',
  'https://app.example.com',
  'https://app.example.com/integrations/../admin',
  'https://app.example.com/integrations/./../admin',
  // encoded variants
  'https://app.example.com/integrations/%2e%2e/admin',
  'https://app.example.com/integrations/%2E%2E/admin',
  'https://app.example.com/integrations/..%2fadmin',
  'https://app.example.com/integrations%2f..%2fadmin',
  'https://app.example.com/integrations%5c..%5cadmin',
  'https://app.example.com%2eevil.com/integrations',
  'https://app.example.com%40evil.com/integrations',
  'https%3A%2F%2Fevil.com%2Fintegrations',
  '%2F%2Fevil.com',
  // control characters and whitespace
  'https://app.example.com/integ\trations',
  'https://app.example.com/integrations\r\nLocation: https://evil.com',
  ' https://app.example.com/integrations',
  'https://evil.com\u0000.app.example.com/integrations',
  // other schemes and downgrades
  'http://app.example.com/integrations',
  'javascript:alert(1)',
  'javascript://app.example.com/integrations%0aalert(1)',
  'data:text/html,<script>alert(1)</script>',
  'ftp://app.example.com/integrations',
  'file:///etc/passwd',
  'ws://app.example.com/integrations',
  'wss://app.example.com/integrations',
  // ports
  'https://app.example.com:8443/integrations',
  'https://app.example.com:80/integrations',
  'https://other.example.com:444/',
  'http://localhost:8081/cb',
  'http://localhost/cb',
  'http://127.0.0.1:8080/cb',
  // neither a URL nor short
  '',
  `https://app.example.com/integrations/${'a'.repeat(2100)}`,
];

const ACCEPTED: string[] = [
  'https://app.example.com/integrations',
  'https://app.example.com/integrations/',
  'https://app.example.com/integrations/slack?tab=1',
  'https://app.example.com/integrations/a/b/c#done',
  'https://app.example.com:443/integrations',
  'https://other.example.com',
  'https://other.example.com/',
  'https://other.example.com/anything/at/all',
  'http://localhost:8080/cb',
  'http://localhost:8080/cb/x',
];

describe('open redirect via return_to', () => {
  const t = useBrokerOnRedis({ ALLOWED_RETURN_URLS: ALLOWED });

  async function connectSessionsStored(): Promise<number> {
    return (await t.client.keys('ob:connect:*')).length;
  }

  it.each(REFUSED.map((u) => [JSON.stringify(u).slice(0, 90), u]))(
    'refuses return_to %s with 400 invalid_request and stores no session',
    async (_label, returnTo) => {
      const before = await connectSessionsStored();
      const res = await t.broker.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'acct-redirect', return_to: returnTo },
      });
      expect(res.body.code).toBe('invalid_request');
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await connectSessionsStored()).toBe(before);
    },
  );

  it.each([
    [['https://app.example.com/integrations']],
    [{ url: 'https://app.example.com/integrations' }],
    [42],
    [null],
    [true],
  ])('refuses a return_to that is not a string (%j)', async (returnTo) => {
    const res = await t.broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'jobber', connection_id: 'acct-redirect', return_to: returnTo },
    });
    expect(res.body.code).toBe('invalid_request');
    expect(res.status).toBe(400);
  });

  it.each(ACCEPTED)(
    'accepts return_to %s, and the callback sends the browser there and nowhere else',
    async (returnTo) => {
      const connectionId = `acct-ok-${Math.random().toString(36).slice(2, 10)}`;
      const result = await t.broker.connect('jobber', connectionId, { returnTo });
      expect(result.callback.status).toBe(303);
      const target = new URL(result.callback.location!);
      const expected = new URL(returnTo);
      expect(target.origin).toBe(expected.origin);
      expect(target.pathname).toBe(expected.pathname);
      expect(target.searchParams.get('connected')).toBe('jobber');
      expect(target.searchParams.get('connection_id')).toBe(connectionId);
    },
  );

  it('takes return_to only from the connect session: one added to the /auth or /callback query is ignored', async () => {
    const browser = new TestBrowser();
    const link = await t.broker.connectLink('jobber', 'acct-query-return', {
      return_to: 'https://app.example.com/integrations',
    });
    const auth = await browser.get(
      `${onListener(t.broker, link)}&return_to=${encodeURIComponent('https://evil.com/')}`,
    );
    const state = new URL(auth.location!).searchParams.get('state')!;
    const done = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-query-return', state, return_to: 'https://evil.com/' }),
    );
    expect(done.status).toBe(303);
    expect(new URL(done.location!).origin).toBe('https://app.example.com');
  });

  it('without return_to answers with a page, never a redirect, even when the query carries one', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-no-return');
    const done = await browser.get(
      callbackUrl(t.broker, 'jobber', {
        code: 'code-no-return',
        state,
        return_to: 'https://evil.com/',
        redirect: '//evil.com',
      }),
    );
    expect(done.status).toBe(200);
    expect(done.location).toBeNull();
    expect(done.body).not.toContain('evil.com');
  });
});
