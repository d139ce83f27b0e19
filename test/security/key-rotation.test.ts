import Redis from 'ioredis';
import {
  TEST_RETURN_ORIGIN,
  TestBroker,
  providerEnv,
  startTestBroker,
  testKey,
} from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import { callbackUrl, startFlow } from '../helpers/flow-steps';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const K1 = `k1:${testKey()}`;
const K2 = `k2:${testKey()}`;
const SECRET_A = 'session-secret-A-0123456789abcdef0123456789abcdef';
const SECRET_B = 'session-secret-B-0123456789abcdef0123456789abcdef';
const OLD_KEY = 'internal-key-old-0123456789abcdef0123456789';
const NEW_KEY = 'internal-key-new-0123456789abcdef0123456789';

/**
 * Every secret can be rotated without downtime: the first value of a list is the one used for new
 * work, the others are still accepted. TOKEN_ENCRYPTION_KEYS (seal with the first, open with any),
 * SESSION_SECRET (sign with the first, verify with any), INTERNAL_API_KEYS (any).
 */
describe('key rotation', () => {
  let redis: TestRedis;
  let client: Redis;
  let fake: FakeProvider;
  let port: number;
  let running: TestBroker | undefined;

  /** One broker at a time on the same public port and Redis: a restart with new settings. */
  async function restart(env: Record<string, string>): Promise<TestBroker> {
    await running?.close();
    running = await startTestBroker(
      { REDIS_URL: redis.url, ...providerEnv('jobber', fake.url), ...env },
      { publicPort: port },
    );
    return running;
  }

  const keyIdOf = (id: string) => client.hget(`ob:{jobber:${id}}:conn`, 'key_id');

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    fake = await FakeProvider.start();
    port = await freePort();
  });

  afterAll(async () => {
    await running?.close();
    client.disconnect();
    await fake.close();
    await redis.close();
  });

  it('TOKEN_ENCRYPTION_KEYS: a new key put first seals new writes, old records still open, and each key opens only its own', async () => {
    let broker = await restart({ TOKEN_ENCRYPTION_KEYS: K1 });
    await broker.connect('jobber', 'acct-old-a', { returnTo: RETURN_TO });
    await broker.connect('jobber', 'acct-old-b', { returnTo: RETURN_TO });
    const oldA = (await broker.api('/internal/connections/jobber/acct-old-a/token')).body.access_token;
    const oldB = (await broker.api('/internal/connections/jobber/acct-old-b/token')).body.access_token;
    expect(await keyIdOf('acct-old-a')).toBe('k1');

    broker = await restart({ TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` });
    // Old records open under the old key, and a read does not re-seal them.
    const read = await broker.api('/internal/connections/jobber/acct-old-a/token');
    expect(read.status).toBe(200);
    expect(read.body.access_token).toBe(oldA);
    expect(await keyIdOf('acct-old-a')).toBe('k1');
    expect((await broker.api('/internal/connections/jobber/acct-old-a')).body.key_id).toBe('k1');

    // Every write from now on is sealed with the new key: connect, import, refresh.
    await broker.connect('jobber', 'acct-new', { returnTo: RETURN_TO });
    expect(await keyIdOf('acct-new')).toBe('k2');
    const put = await broker.api('/internal/connections/jobber/acct-imported', {
      method: 'PUT',
      body: { access_token: 'at-imported-rotation', expires_in: 3600 },
    });
    expect(put.body.key_id).toBe('k2');
    const refreshed = await broker.api('/internal/connections/jobber/acct-old-a/token?force_refresh=true');
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(oldA);
    expect(await keyIdOf('acct-old-a')).toBe('k2');
    const newToken = (await broker.api('/internal/connections/jobber/acct-new/token')).body.access_token;

    // Without the new key, what it sealed does not open (and says which key is missing); the rest does.
    broker = await restart({ TOKEN_ENCRYPTION_KEYS: K1 });
    const missing = await broker.api('/internal/connections/jobber/acct-new/token');
    expect(missing.body.code).toBe('decryption_failed');
    expect(missing.body.detail).toContain('"k2"');
    expect(JSON.stringify(missing.body)).not.toContain(newToken);
    expect((await broker.api('/internal/connections/jobber/acct-old-b/token')).body.access_token).toBe(oldB);

    // Only the new key: records still under k1 fail until re-sealed under the full ring.
    broker = await restart({ TOKEN_ENCRYPTION_KEYS: K2 });
    expect((await broker.api('/internal/connections/jobber/acct-old-b/token')).body.code).toBe(
      'decryption_failed',
    );
    expect(await keyIdOf('acct-old-b')).toBe('k1');
    expect((await broker.api('/internal/connections/jobber/acct-new/token')).body.access_token).toBe(
      newToken,
    );

    broker = await restart({ TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` });
    expect(await broker.broker.connections.reseal('jobber', 'acct-old-b')).toBe('resealed');
    broker = await restart({ TOKEN_ENCRYPTION_KEYS: K2 });
    expect((await broker.api('/internal/connections/jobber/acct-old-b/token')).body.access_token).toBe(oldB);
  });

  it('SESSION_SECRET: a flow started under secret A completes after a restart with "B,A", and not with "B" alone', async () => {
    let broker = await restart({ SESSION_SECRET: SECRET_A });
    const kept = new TestBrowser();
    const dropped = new TestBrowser();
    const keptFlow = await startFlow(broker, kept, 'jobber', 'acct-session-kept', { return_to: RETURN_TO });
    const droppedFlow = await startFlow(broker, dropped, 'jobber', 'acct-session-dropped', {
      return_to: RETURN_TO,
    });

    broker = await restart({ SESSION_SECRET: `${SECRET_B},${SECRET_A}` });
    const done = await kept.get(
      callbackUrl(broker, 'jobber', { code: 'code-session-kept', state: keptFlow.state }),
    );
    expect(done.status).toBe(303);
    expect(new URL(done.location!).searchParams.get('connection_id')).toBe('acct-session-kept');

    // A flow started now is signed with B: it completes once A is gone.
    const fresh = new TestBrowser();
    const freshFlow = await startFlow(broker, fresh, 'jobber', 'acct-session-fresh', {
      return_to: RETURN_TO,
    });

    broker = await restart({ SESSION_SECRET: SECRET_B });
    const refused = await dropped.get(
      callbackUrl(broker, 'jobber', { code: 'code-session-dropped', state: droppedFlow.state }),
    );
    expect(refused.status).toBe(400);
    expect(fake.tokenRequests.filter((r) => r.params.code === 'code-session-dropped')).toHaveLength(0);
    const completed = await fresh.get(
      callbackUrl(broker, 'jobber', { code: 'code-session-fresh', state: freshFlow.state }),
    );
    expect(completed.status).toBe(303);
  });

  it('INTERNAL_API_KEYS: during a rotation both keys work; afterwards the old one is refused', async () => {
    const call = (broker: TestBroker, key: string) =>
      fetch(`${broker.internalUrl}/internal/providers`, { headers: { authorization: `Bearer ${key}` } }).then(
        (r) => r.status,
      );

    let broker = await restart({ INTERNAL_API_KEYS: OLD_KEY });
    expect(await call(broker, OLD_KEY)).toBe(200);
    expect(await call(broker, NEW_KEY)).toBe(401);

    broker = await restart({ INTERNAL_API_KEYS: `${NEW_KEY},${OLD_KEY}` });
    expect(await call(broker, NEW_KEY)).toBe(200);
    expect(await call(broker, OLD_KEY)).toBe(200);
    expect(await call(broker, `${NEW_KEY},${OLD_KEY}`)).toBe(401);
    expect(await call(broker, NEW_KEY.slice(0, -1))).toBe(401);

    broker = await restart({ INTERNAL_API_KEYS: NEW_KEY });
    expect(await call(broker, NEW_KEY)).toBe(200);
    expect(await call(broker, OLD_KEY)).toBe(401);
  });
});
