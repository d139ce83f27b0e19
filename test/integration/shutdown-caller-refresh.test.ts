import { BrokerProcess } from '../helpers/broker-process';
import { defaultTokenHandler } from '../helpers/fake-provider';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';
import { useRedisAndFake } from '../helpers/redis-fixture';

/**
 * SIGTERM while a caller's refresh waits on a slow provider (a real `node dist/main.js`), with a
 * SHUTDOWN_TIMEOUT shorter than the provider's answer: the process waits for the refresh it sent
 * (bounded by the refresh lock's TTL), stores the rotated tokens, and only then closes Redis.
 */
const PREFIX = 'sigterm-caller:';
const TOKEN_DELAY_MS = 2000;

describe('SIGTERM in the middle of a caller refresh', () => {
  let broker: BrokerProcess | undefined;
  let reader: TestBroker | undefined;
  afterAll(async () => {
    await broker?.kill();
    await reader?.close();
  });
  const t = useRedisAndFake({ rotateRefreshTokens: true }, { build: true });

  it('stores the rotated tokens the provider answers after SIGTERM, then exits 0', async () => {
    broker = await BrokerProcess.start({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: PREFIX,
      SHUTDOWN_TIMEOUT: '0.3',
      PROVIDER_TIMEOUT: '5',
      ...providerEnv('jobber', t.fake.url),
    });
    let arrived = false;
    t.fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token') {
        arrived = true;
        await new Promise((r) => setTimeout(r, TOKEN_DELAY_MS));
      }
      return defaultTokenHandler(req, res, provider);
    });
    t.fake.liveRefreshTokens.add('rt-caller');
    const put = await broker.api('/internal/connections/jobber/caller', {
      method: 'PUT',
      body: { access_token: 'at-caller', refresh_token: 'rt-caller', expires_in: 3600 },
    });
    expect(put.status).toBe(201);

    const asked = broker
      .api('/internal/connections/jobber/caller/token?force_refresh=true', { timeoutMs: 20_000 })
      .catch(() => undefined);
    await until(() => (arrived ? true : undefined));
    const exitCode = await broker.stop('SIGTERM', 20_000);
    await asked;
    expect({ exitCode, signal: broker.exitSignal }).toEqual({ exitCode: 0, signal: null });

    // The provider retired rt-caller and issued a new pair (whether or not anyone was left to hear
    // it): Redis holds the new pair.
    await until(() => (t.fake.liveRefreshTokens.has('rt-caller') ? undefined : true));
    const issued = t.fake.issued[t.fake.issued.length - 1]!;
    t.fake.onToken(undefined);
    reader = await startTestBroker({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: PREFIX,
      ...providerEnv('jobber', t.fake.url),
    });
    const token = await reader.api('/internal/connections/jobber/caller/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(issued.access_token);
    const forced = await reader.api('/internal/connections/jobber/caller/token?force_refresh=true');
    expect(forced.status).toBe(200);
    expect(t.fake.refreshRequests[t.fake.refreshRequests.length - 1]!.params.refresh_token).toBe(
      issued.refresh_token,
    );
  }, 90_000);
});
