import { providerEnv } from '../helpers/broker-harness';
import { BrokerProcess, ensureBuilt } from '../helpers/broker-process';
import { FakeProvider } from '../helpers/fake-provider';
import { FakeUpstream } from '../helpers/fake-upstream';
import { TestRedis } from '../helpers/redis-server';

/**
 * The proxy takes its token the token API's way: 200 proxied requests for a stale connection,
 * spread over two broker processes on one Redis, make one refresh at the provider, and every
 * request reaches the API with the new token.
 */
describe('proxy stampede over two broker processes', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let upstream: FakeUpstream;
  let brokers: BrokerProcess[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    redis = await TestRedis.start();
    fake = await FakeProvider.start({ tokenDelayMs: 300, rotateRefreshTokens: true });
    upstream = await FakeUpstream.start();
    const env = {
      REDIS_URL: redis.url,
      ...providerEnv('jobber', fake.url),
      JOBBER_API_BASE_URL: `${upstream.url}/api`,
      // Generous: a refresh that the provider answers after the broker gave up (a loaded machine)
      // would retire the refresh token the next caller presents (409), which is not what this tests.
      PROVIDER_TIMEOUT: '10',
    };
    brokers = await Promise.all([BrokerProcess.start(env), BrokerProcess.start(env)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop('SIGKILL')));
    await upstream?.close();
    await fake?.close();
    await redis?.close();
  });

  it('sends one refresh request for 200 concurrent proxied requests needing one', async () => {
    const refresh = 'rt-stampede';
    fake.liveRefreshTokens.add(refresh);
    const put = await brokers[0]!.api('/internal/connections/jobber/hot', {
      method: 'PUT',
      body: { access_token: 'stale-access', refresh_token: refresh, expires_in: 60 },
    });
    expect(put.status).toBe(201);
    const refreshesBefore = fake.refreshRequests.length;
    const before = upstream.requests.length;

    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        brokers[i % 2]!.api(`/internal/proxy/jobber/hot/graphql?i=${i}`, { timeoutMs: 30_000 }),
      ),
    );

    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
    expect(fake.refreshRequests.length).toBe(refreshesBefore + 1);
    const issued = fake.issued[fake.issued.length - 1]!;
    const seen = upstream.requests.slice(before);
    expect(seen).toHaveLength(200);
    expect(new Set(seen.map((r) => r.headers.authorization))).toEqual(
      new Set([`Bearer ${issued.access_token}`]),
    );
    expect(new Set(seen.map((r) => r.url)).size).toBe(200);
  });
});
