import { CliContext, createCliContext } from '../../src/cli/cli-context';
import { loadConfig } from '../../src/config/load-config';
import { baseEnv, providerEnv } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';

/**
 * The admin CLI builds its connection stack with the broker's factory (`createConnections`), so
 * its provider calls follow the same settings: here PROVIDER_CIRCUIT_THRESHOLD, which the CLI's
 * own copy of the stack used to leave at the breaker's default.
 */
describe('the CLI connection stack', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let ctx: CliContext | undefined;

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start();
  });

  afterAll(async () => {
    fake.options.tokenDelayMs = undefined;
    await ctx?.close();
    await fake.close();
    await redis.close();
  });

  it('opens a provider circuit after PROVIDER_CIRCUIT_THRESHOLD failures and then sends nothing', async () => {
    const config = loadConfig(
      baseEnv(9, {
        REDIS_URL: redis.url,
        PROVIDER_TIMEOUT: '0.3',
        PROVIDER_CIRCUIT_THRESHOLD: '2',
        PROVIDER_CIRCUIT_OPEN: '60',
        ...providerEnv('bonjoro', fake.url),
      }),
    );
    ctx = await createCliContext(config);
    const provider = ctx.registry.get('bonjoro')!;
    const minted = fake.mint();
    await ctx.connections.saveTokens(
      provider,
      'cli-circuit',
      {
        access_token: minted.access_token as string,
        refresh_token: minted.refresh_token as string,
        token_type: 'Bearer',
        expires_at: Date.now() + 3_600_000,
      },
      [],
    );
    fake.options.tokenDelayMs = 3000; // far beyond PROVIDER_TIMEOUT: each refresh times out
    const forced = { minValiditySeconds: 0, forceRefresh: true };

    for (let i = 0; i < 2; i++) {
      await expect(ctx.connections.getToken(provider, 'cli-circuit', forced)).rejects.toMatchObject({
        code: 'provider_unavailable',
      });
    }
    expect(fake.refreshRequests).toHaveLength(2);

    // Open: refused at once, nothing sent (the breaker's default threshold would have let it go).
    await expect(ctx.connections.getToken(provider, 'cli-circuit', forced)).rejects.toMatchObject({
      code: 'provider_unavailable',
    });
    expect(fake.refreshRequests).toHaveLength(2);
    // The stored token is untouched and still served when no refresh is asked for.
    const answer = await ctx.connections.getToken(provider, 'cli-circuit', {
      minValiditySeconds: 0,
      forceRefresh: false,
    });
    expect(answer).toMatchObject({ auth_mode: 'oauth2', access_token: minted.access_token });
  });
});
