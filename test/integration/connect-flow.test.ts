import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TEST_RETURN_ORIGIN, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';

const PROVIDERS = ['bexio', 'bonjoro', 'jobber', 'process-street', 'respond-io'];

describe('connect flow, every built-in provider', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: TestBroker;

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start();
    const env: Record<string, string> = { REDIS_URL: redis.url };
    for (const id of PROVIDERS) Object.assign(env, providerEnv(id, fake.url));
    broker = await startTestBroker(env);
  });

  afterAll(async () => {
    await broker.close();
    await fake.close();
    await redis.close();
  });

  it.each(PROVIDERS)(
    'connects %s: redirect with state and PKCE, code exchange, 303 to return_to, token served',
    async (id) => {
      const before = fake.tokenRequests.length;
      const result = await broker.connect(id, `acct-${id}`, {
        returnTo: `${TEST_RETURN_ORIGIN}/integrations?tab=1`,
      });
      const q = result.authorizeUrl.searchParams;
      expect(result.authorizeUrl.origin + result.authorizeUrl.pathname).toBe(`${fake.url}/authorize`);
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe(`${id}-client`);
      expect(q.get('redirect_uri')).toBe(`${broker.publicUrl}/callback/${id}`);
      expect(q.get('state')!.length).toBeGreaterThanOrEqual(22);
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);

      expect(result.callback.status).toBe(303);
      const back = new URL(result.callback.location!);
      expect(back.origin + back.pathname).toBe(`${TEST_RETURN_ORIGIN}/integrations`);
      expect(back.searchParams.get('tab')).toBe('1');
      expect(back.searchParams.get('connected')).toBe(id);
      expect(back.searchParams.get('connection_id')).toBe(`acct-${id}`);

      expect(fake.tokenRequests.length).toBe(before + 1);
      const exchange = fake.tokenRequests[fake.tokenRequests.length - 1]!;
      expect(exchange.params.grant_type).toBe('authorization_code');
      expect(exchange.params.redirect_uri).toBe(`${broker.publicUrl}/callback/${id}`);
      expect(exchange.params.code_verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);

      const token = await broker.api(`/internal/connections/${id}/acct-${id}/token`);
      expect(token.status).toBe(200);
      expect(token.body.auth_mode).toBe('oauth2');
      expect(token.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
      expect(token.body.token_type).toBe('Bearer');
    },
  );

  it('shows a short page when there is no return_to', async () => {
    const result = await broker.connect('bexio', 'no-return');
    expect(result.callback.status).toBe(200);
    expect(result.callback.body).toContain('bexio is connected');
  });
});
