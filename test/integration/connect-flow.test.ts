import { createHash, randomBytes } from 'node:crypto';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl } from '../helpers/flow-steps';

const PROVIDERS = ['bexio', 'bonjoro', 'jobber', 'process-street', 'respond-io'];

describe('connect flow, every built-in provider', () => {
  const t = useBrokerOnRedis((fakeUrl) =>
    Object.assign({}, ...PROVIDERS.map((id) => providerEnv(id, fakeUrl))),
  );

  it.each(PROVIDERS)(
    'connects %s: redirect with state and PKCE, code exchange, 303 to return_to, token served',
    async (id) => {
      const before = t.fake.tokenRequests.length;
      const result = await t.broker.connect(id, `acct-${id}`, {
        returnTo: `${TEST_RETURN_ORIGIN}/integrations?tab=1`,
      });
      const q = result.authorizeUrl.searchParams;
      expect(result.authorizeUrl.origin + result.authorizeUrl.pathname).toBe(`${t.fake.url}/authorize`);
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe(`${id}-client`);
      expect(q.get('redirect_uri')).toBe(`${t.broker.publicUrl}/callback/${id}`);
      expect(q.get('state')!.length).toBeGreaterThanOrEqual(22);
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);

      expect(result.callback.status).toBe(303);
      const back = new URL(result.callback.location!);
      expect(back.origin + back.pathname).toBe(`${TEST_RETURN_ORIGIN}/integrations`);
      expect(back.searchParams.get('tab')).toBe('1');
      expect(back.searchParams.get('connected')).toBe(id);
      expect(back.searchParams.get('connection_id')).toBe(`acct-${id}`);

      expect(t.fake.tokenRequests.length).toBe(before + 1);
      const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
      expect(exchange.params.grant_type).toBe('authorization_code');
      expect(exchange.params.redirect_uri).toBe(`${t.broker.publicUrl}/callback/${id}`);
      expect(exchange.params.code_verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);

      const token = await t.broker.api(`/internal/connections/${id}/acct-${id}/token`);
      expect(token.status).toBe(200);
      expect(token.body.auth_mode).toBe('oauth2');
      expect(token.body.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);
      expect(token.body.token_type).toBe('Bearer');
    },
  );

  it('starts and completes a flow from a link an earlier build stored (no flow group in its key), once', async () => {
    // As builds before flow groups stored a link: `<prefix>connect:<sha256 of the token>`.
    const token = randomBytes(32).toString('base64url');
    const key = `ob:connect:${createHash('sha256').update(token).digest('hex')}`;
    const session = { provider: 'bexio', connection_id: 'acct-untagged', expires_at: Date.now() + 600_000 };
    await t.client.set(key, JSON.stringify(session), 'EX', 600);
    const browser = new TestBrowser();
    const link = `${t.broker.publicUrl}/auth/bexio?session=${token}`;

    const wrong = await browser.get(link.replace('/auth/bexio', '/auth/jobber'));
    expect(wrong.status).toBe(400);
    expect(await t.client.exists(key)).toBe(1);

    const auth = await browser.get(link);
    expect(auth.status).toBe(302);
    expect(await t.client.exists(key)).toBe(0);
    const state = new URL(auth.location!).searchParams.get('state')!;
    const done = await browser.get(callbackUrl(t.broker, 'bexio', { code: 'code-untagged', state }));
    expect(done.status).toBe(200);
    expect(done.body).toContain('bexio is connected');
    expect((await t.broker.api('/internal/connections/bexio/acct-untagged')).status).toBe(200);
    expect((await browser.get(link)).status).toBe(400);
  });

  it('shows a short page when there is no return_to', async () => {
    const result = await t.broker.connect('bexio', 'no-return');
    expect(result.callback.status).toBe(200);
    expect(result.callback.body).toContain('bexio is connected');
  });
});
