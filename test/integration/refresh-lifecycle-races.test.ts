import Redis from 'ioredis';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider, defaultTokenHandler } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';

/**
 * Races between a refresh in flight and what else happens to its connection: a Redis write that
 * fails once after the provider rotated (the lock must stay held until the late write lands), a
 * DELETE while the provider thinks (the new grant is revoked, the connection never comes back), a
 * delete and reconnect while the provider thinks (the old refresh never lands on the new record).
 * Two in-process brokers share one real Redis, as two processes would.
 */
describe('a refresh in flight against a write failure, a DELETE, a reconnect', () => {
  let redis: TestRedis;
  let admin: Redis;
  let fake: FakeProvider;
  let a: TestBroker;
  let b: TestBroker;

  /** A gate the fake's refresh answer waits on; `arrived` resolves when a refresh came in. */
  function holdRefreshes(): { arrived: Promise<string>; release: () => void } {
    let release!: () => void;
    let arrive!: (presented: string) => void;
    const gate = new Promise<void>((r) => (release = r));
    const arrived = new Promise<string>((r) => (arrive = r));
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token') {
        arrive(req.params.refresh_token ?? '');
        await gate;
      }
      return defaultTokenHandler(req, res, provider);
    });
    return { arrived, release };
  }

  /**
   * Makes the broker's record writes fail (as a dropped connection fails them) until the answer
   * is called; everything else of that client, and the other broker, keep working.
   */
  function failWrites(broker: TestBroker, times = Infinity): () => void {
    const client = broker.broker.redis as unknown as Record<string, (...args: unknown[]) => unknown>;
    const original = client.obWrite!;
    let left = times;
    client.obWrite = (...args: unknown[]) => {
      if (left <= 0) return original.apply(client, args);
      left -= 1;
      return Promise.reject(new Error('Connection is closed.'));
    };
    return () => {
      client.obWrite = original;
    };
  }

  async function put(
    broker: TestBroker,
    id: string,
  ): Promise<{ access_token: string; refresh_token: string }> {
    const minted = fake.mint() as { access_token: string; refresh_token: string };
    const res = await broker.api(`/internal/connections/jobber/${id}`, {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
    });
    expect([200, 201]).toContain(res.status);
    return minted;
  }

  beforeAll(async () => {
    redis = await TestRedis.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    admin = redis.client();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    const env = { REDIS_URL: redis.url, ...providerEnv('jobber', fake.url), PROVIDER_TIMEOUT: '2' };
    [a, b] = await Promise.all([startTestBroker(env), startTestBroker(env)]);
  });

  afterEach(() => fake.onToken(undefined));

  afterAll(async () => {
    await a?.close();
    await b?.close();
    admin?.disconnect();
    await fake?.close();
    await redis?.close();
  });

  it('keeps the refresh lock while the rotated tokens wait for a failed write: another process never presents the retired refresh token', async () => {
    const minted = await put(a, 'burn');
    fake.onToken(async (req, res, provider) => {
      // The broker's write of the answer fails once (a dropped connection, a failover).
      if (req.params.grant_type === 'refresh_token') failWrites(a, 1);
      return defaultTokenHandler(req, res, provider);
    });
    const first = await a.api('/internal/connections/jobber/burn/token?force_refresh=true');
    expect(first.status).toBe(503);
    const rotated = fake.issued[fake.issued.length - 1]!;
    fake.onToken(undefined);
    // At once, another process asks for a fresh token.
    const second = await b.api('/internal/connections/jobber/burn/token?force_refresh=true');

    // Nobody presented the retired refresh token: the second caller waited for the late write.
    expect(fake.refreshRequests.map((r) => r.params.refresh_token)).not.toContain(undefined);
    expect(fake.refreshRequests.filter((r) => r.params.refresh_token === minted.refresh_token)).toHaveLength(
      1,
    );
    expect(second.status).toBe(200);
    const meta = await b.api('/internal/connections/jobber/burn');
    expect(meta.body.status).toBe('active');
    // What it holds works: the next forced refresh is accepted by the provider.
    const third = await b.api('/internal/connections/jobber/burn/token?force_refresh=true');
    expect(third.status).toBe(200);
    // It waited for the late write and took its answer (the tokens the provider rotated to).
    expect(second.body.access_token).toBe(rotated.access_token);
  });

  it('DELETE while the provider answers a refresh: the new grant is revoked and the connection stays deleted', async () => {
    await put(a, 'gone');
    const held = holdRefreshes();
    const refreshing = a.api('/internal/connections/jobber/gone/token?force_refresh=true');
    await held.arrived;
    const del = await b.api('/internal/connections/jobber/gone', { method: 'DELETE' });
    expect(del.status).toBe(204);
    held.release();
    const answer = await refreshing;
    expect(answer.status).toBe(404);
    const fresh = fake.issued[fake.issued.length - 1]!;
    // The refresh token the provider issued after the delete is revoked by the broker.
    await until(() =>
      fake.revocations.some((r) => r.params.token === fresh.refresh_token) ? true : undefined,
    );
    expect((await a.api('/internal/connections/jobber/gone')).status).toBe(404);
    expect(await admin.exists('{jobber:gone}:conn', '{jobber:gone}:sealed')).toBe(0);
  });

  it('DELETE while the late write waits for Redis: the late write never brings the connection back, and the new grant is revoked', async () => {
    await put(a, 'late-gone');
    let restore = (): void => undefined;
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token') restore = failWrites(a);
      return defaultTokenHandler(req, res, provider);
    });
    const first = await a.api('/internal/connections/jobber/late-gone/token?force_refresh=true');
    expect(first.status).toBe(503);
    const fresh = fake.issued[fake.issued.length - 1]!;
    // A delete goes through while the rotated tokens wait in process A for Redis.
    const del = await b.api('/internal/connections/jobber/late-gone', { method: 'DELETE' });
    expect(del.status).toBe(204);
    restore();
    await until(() =>
      fake.revocations.some((r) => r.params.token === fresh.refresh_token) ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 600)); // a late write would have landed by now
    expect((await a.api('/internal/connections/jobber/late-gone')).status).toBe(404);
    expect(await admin.exists('{jobber:late-gone}:conn', '{jobber:late-gone}:sealed')).toBe(0);
  });

  it('delete and reconnect while a refresh is in flight: the old refresh never lands on the new connection', async () => {
    await put(a, 'aba');
    const held = holdRefreshes();
    const refreshing = a.api('/internal/connections/jobber/aba/token?force_refresh=true');
    await held.arrived;
    expect((await b.api('/internal/connections/jobber/aba', { method: 'DELETE' })).status).toBe(204);
    const reconnected = await put(b, 'aba');
    held.release();
    await refreshing;
    const old = fake.issued[fake.issued.length - 1]!;
    expect(old.access_token).not.toBe(reconnected.access_token);

    const token = await b.api('/internal/connections/jobber/aba/token?min_validity=0');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(reconnected.access_token);
    // The deleted grant's new refresh token does not stay live.
    await until(() =>
      fake.revocations.some((r) => r.params.token === old.refresh_token) ? true : undefined,
    );
  });

  it('delete and reconnect while a refresh is refused: the failure is not recorded on the new connection', async () => {
    await put(a, 'aba-fail');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const came = new Promise<void>((r) => (arrived = r));
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type !== 'refresh_token') return defaultTokenHandler(req, res, provider);
      arrived();
      await gate;
      res.status(400).json({ error: 'invalid_grant' });
    });
    const refreshing = a.api('/internal/connections/jobber/aba-fail/token?force_refresh=true');
    await came;
    expect((await b.api('/internal/connections/jobber/aba-fail', { method: 'DELETE' })).status).toBe(204);
    const reconnected = await put(b, 'aba-fail');
    release();
    await refreshing;
    fake.onToken(undefined);
    const meta = await b.api('/internal/connections/jobber/aba-fail');
    expect(meta.body.status).toBe('active');
    expect(meta.body.refresh_failures).toBe(0);
    const token = await b.api('/internal/connections/jobber/aba-fail/token?min_validity=0');
    expect(token.body.access_token).toBe(reconnected.access_token);
  });
});
