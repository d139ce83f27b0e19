import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const SCRIPT = '<script>alert("xss")</script>';
const ATTRIBUTE = '"><svg onload=alert(1)>';
const e = encodeURIComponent;

/** Nothing a request carried comes back as markup, and no stack trace leaves the process. */
function expectInert(text: string): void {
  expect(text).not.toContain('<script>alert');
  expect(text).not.toContain('<svg onload');
  expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
  expect(text).not.toContain('node_modules');
}

/**
 * Reflected XSS: provider ids, connection ids, query values, form fields, JSON field names and
 * values carrying markup never appear unescaped in a page (text/html) or a problem body
 * (application/problem+json), and no answer carries a stack trace.
 */
describe('reflected markup', () => {
  let dir: string;

  const t = useBrokerOnRedis((fakeUrl) => {
    dir = mkdtempSync(join(tmpdir(), 'ob-markup-'));
    const file = join(dir, 'providers.json');
    // An operator's display name with markup in it is shown as text too.
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          {
            id: 'fancy',
            display_name: `Fancy ${SCRIPT}`,
            authorization_url: `${fakeUrl}/authorize`,
            token_url: `${fakeUrl}/token`,
          },
          {
            id: 'fancy-off',
            display_name: `Off ${ATTRIBUTE}`,
            authorization_url: `${fakeUrl}/authorize`,
            token_url: `${fakeUrl}/token`,
          },
          {
            id: 'keyed',
            display_name: `Keyed ${SCRIPT}`,
            auth_mode: 'api_key',
            api_key: { header: 'X-API-KEY', verify_url: `${fakeUrl}/verify` },
          },
        ],
      }),
    );
    return { PROVIDERS_FILE: file, ...providerEnv('fancy', fakeUrl) };
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const publicPaths: Array<[string, string]> = [
    ['a provider id in /auth', `/auth/${e(SCRIPT)}?session=abc`],
    ['a provider id in /callback', `/callback/${e(ATTRIBUTE)}?state=abc`],
    ['an unknown path', `/${e(SCRIPT)}`],
    ['a session token', `/auth/jobber?session=${e(SCRIPT)}`],
    ['a repeated session token', `/auth/jobber?session=${e(SCRIPT)}&session=${e(ATTRIBUTE)}`],
    [
      'every callback parameter',
      `/callback/jobber?state=${e(SCRIPT)}&code=${e(SCRIPT)}&error=${e(SCRIPT)}&error_description=${e(ATTRIBUTE)}&iss=${e(SCRIPT)}`,
    ],
    ['a malformed escape in the path', `/auth/${e(SCRIPT)}%E0%A4%A`],
    ['a malformed escape in the query', `/callback/jobber?state=%E0%A4%A${e(SCRIPT)}`],
    ['a provider with markup in its display name, not enabled', `/auth/fancy-off?session=x`],
    ['a provider with markup in its display name', `/auth/fancy?session=x`],
  ];

  it.each(publicPaths)('answers %s with an inert page', async (_label, path) => {
    for (const accept of ['text/html', 'application/json', '*/*']) {
      const res = await fetch(`${t.broker.publicUrl}${path}`, { headers: { accept }, redirect: 'manual' });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expectInert(await res.text());
      expectInert(res.headers.get('location') ?? '');
    }
  });

  it('escapes markup it must show, such as an operator-set display name', async () => {
    const res = await fetch(`${t.broker.publicUrl}/auth/fancy?session=x`, {
      headers: { accept: 'text/html' },
    });
    expect(await res.text()).toContain('Fancy &lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;');
  });

  it('sends markup from a provider error only as an error code, to return_to and on the page', async () => {
    for (const returnTo of [RETURN_TO, undefined]) {
      const browser = new TestBrowser();
      const { state } = await startFlow(
        t.broker,
        browser,
        'fancy',
        `acct-markup-${returnTo ? 'redirect' : 'page'}`,
        returnTo ? { return_to: returnTo } : {},
      );
      const res = await browser.get(
        callbackUrl(t.broker, 'fancy', {
          state,
          error: SCRIPT,
          error_description: ATTRIBUTE,
          error_uri: `javascript:${SCRIPT}`,
        }),
      );
      expectInert(res.body);
      if (returnTo) {
        expect(res.status).toBe(303);
        expect(new URL(res.location!).searchParams.get('error')).toBe('provider_error');
        expectInert(decodeURIComponent(res.location!));
      } else {
        expect(res.status).toBe(400);
        expect(res.body).toContain('provider_error');
      }
    }
  });

  it('keeps a token endpoint error with markup out of the page', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'fancy', 'acct-markup-exchange');
    t.fake.failNext(1, 400, { error: SCRIPT, error_description: ATTRIBUTE });
    const res = await browser.get(callbackUrl(t.broker, 'fancy', { state, code: SCRIPT }));
    expect(res.status).toBe(400);
    expectInert(res.body);
  });

  it('shows the API-key form and its errors without echoing submitted fields', async () => {
    const browser = new TestBrowser();
    const link = await t.broker.connectLink('keyed', 'acct-markup-key');
    const form = await browser.get(onListener(t.broker, link));
    expect(form.status).toBe(200);
    expectInert(form.body);
    const flow = /name="flow" value="([^"]+)"/.exec(form.body)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;

    const refused = await browser.postForm(`${t.broker.publicUrl}/auth/keyed`, {
      flow,
      csrf,
      api_key: SCRIPT.replace(/ /g, ''),
    });
    expect(refused.status).toBe(400);
    expectInert(refused.body);
    const spaced = await browser.postForm(`${t.broker.publicUrl}/auth/keyed`, {
      flow,
      csrf,
      api_key: ATTRIBUTE,
    });
    expect(spaced.status).toBe(400);
    expectInert(spaced.body);
    const forged = await browser.postForm(`${t.broker.publicUrl}/auth/keyed`, {
      flow: ATTRIBUTE,
      csrf: SCRIPT,
      api_key: SCRIPT,
    });
    expect(forged.status).toBe(400);
    expectInert(forged.body);
  });

  const internalCalls: Array<[string, string, string?, unknown?]> = [
    ['a provider id in the path', `/internal/connections/${e(SCRIPT)}/acct/token`],
    ['a connection id in the path', `/internal/connections/jobber/${e(SCRIPT)}`],
    ['a connection id before /token', `/internal/connections/jobber/${e(ATTRIBUTE)}/token`],
    [
      'query values',
      `/internal/connections/jobber/acct/token?min_validity=${e(SCRIPT)}&force_refresh=${e(ATTRIBUTE)}`,
    ],
    ['listing filters', `/internal/connections?provider=${e(SCRIPT)}`],
    ['a listing cursor', `/internal/connections?cursor=${e(SCRIPT)}`],
    ['a listing limit', `/internal/connections?limit=${e(SCRIPT)}`],
    ['an unknown internal path', `/internal/${e(SCRIPT)}`],
    [
      'a provider id in a connect session',
      '/internal/connect-sessions',
      'POST',
      { provider: SCRIPT, connection_id: 'a' },
    ],
    [
      'a connection id in a connect session',
      '/internal/connect-sessions',
      'POST',
      { provider: 'jobber', connection_id: SCRIPT },
    ],
    [
      'a return_to in a connect session',
      '/internal/connect-sessions',
      'POST',
      { provider: 'jobber', connection_id: 'a', return_to: `javascript:${SCRIPT}` },
    ],
    [
      'scopes in a connect session',
      '/internal/connect-sessions',
      'POST',
      { provider: 'jobber', connection_id: 'a', scopes: [SCRIPT] },
    ],
    [
      'an unknown field name',
      '/internal/connect-sessions',
      'POST',
      { provider: 'jobber', connection_id: 'a', [SCRIPT]: 1, [ATTRIBUTE]: 2 },
    ],
    [
      'an unknown field name in an import',
      '/internal/connections/jobber/acct-markup',
      'PUT',
      { access_token: 'x', [SCRIPT]: 1 },
    ],
    [
      'values in an import',
      '/internal/connections/jobber/acct-markup',
      'PUT',
      { access_token: 'x', expires_at: SCRIPT, token_type: ATTRIBUTE },
    ],
    ['malformed JSON', '/internal/connect-sessions', 'POST', `{"${SCRIPT}": "${ATTRIBUTE}",`],
  ];

  it.each(internalCalls)(
    'answers %s with an inert problem body',
    async (_label, path, method = 'GET', body) => {
      const res = await t.broker.api(path, { method, body });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expectInert(JSON.stringify(res.body));
      expect(typeof res.body.code).toBe('string');
    },
  );

  it('does not echo an X-Request-Id carrying markup, nor an Authorization header', async () => {
    const pub = await fetch(`${t.broker.publicUrl}/auth/jobber?session=x`, {
      headers: { 'x-request-id': SCRIPT.replace(/"/g, '') },
    });
    expectInert(pub.headers.get('x-request-id') ?? '');
    expectInert(await pub.text());
    const internal = await t.broker.api('/internal/connections/jobber/acct/token', {
      headers: { 'x-request-id': ATTRIBUTE },
    });
    expectInert(internal.headers.get('x-request-id') ?? '');
    expectInert(JSON.stringify(internal.body));
    const unauthorized = await fetch(`${t.broker.internalUrl}/internal/providers`, {
      headers: { authorization: `Bearer ${SCRIPT.replace(/[ "]/g, '')}` },
    });
    expect(unauthorized.status).toBe(401);
    expectInert(await unauthorized.text());
  });
});
