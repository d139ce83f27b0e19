import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { useRedisAndFake } from '../helpers/redis-fixture';
import { scheduledAt } from '../helpers/index-entries';

/**
 * Connections the sweeper cannot refresh must not starve the others: 100 records that do not
 * decrypt (or whose locks a dead process holds) fall due before a healthy connection, more than
 * fill one look at the schedule (100), and the healthy one still gets its keep-alive in the same
 * sweep; each unrefreshable one is handled once, recorded, and put back with backoff.
 */
const BROKEN = 100;

describe('sweeps past connections that cannot be refreshed', () => {
  const t = useRedisAndFake({ rotateRefreshTokens: true });
  let broker: TestBroker;

  afterEach(async () => {
    await broker?.close();
  });

  /** Imports `ids`, then makes them due at `dueAt` (record and schedule alike). */
  async function importDue(prefix: string, ids: string[], dueAt: number): Promise<void> {
    for (const id of ids) {
      const minted = t.fake.mint();
      const res = await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
      });
      expect(res.status).toBe(201);
      await t.client.hset(`${prefix}{bonjoro:${id}}:conn`, 'next_refresh_at', String(dueAt));
      await t.client.zadd(`${prefix}schedule`, dueAt, `bonjoro:${id}`);
    }
  }

  async function start(prefix: string): Promise<void> {
    broker = await startTestBroker({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: prefix,
      ...providerEnv('bonjoro', t.fake.url),
    });
  }

  const ids = (name: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${name}-${i}`);

  it('records the failure of a record that does not decrypt, backs it off, and reaches the healthy connection in the same sweep', async () => {
    const prefix = 'undecryptable:';
    await start(prefix);
    const now = Date.now();
    const broken = ids('broken', BROKEN);
    await importDue(prefix, broken, now - 60_000);
    await importDue(prefix, ['healthy'], now - 1000);
    for (const id of broken)
      await t.client.set(`${prefix}{bonjoro:${id}}:sealed`, 'k1.not-a-sealed-document');
    const before = t.fake.refreshRequests.length;

    await broker.broker.sweeper.sweepOnce();

    const healthy = await broker.api('/internal/connections/bonjoro/healthy');
    expect(healthy.body.last_refreshed_at).not.toBeNull();
    expect(t.fake.refreshRequests.length - before).toBe(1);
    for (const id of broken) {
      const meta = await broker.api(`/internal/connections/bonjoro/${id}`);
      expect(meta.body.refresh_failures).toBe(1);
      expect(meta.body.last_error.code).toBe('decryption_failed');
      expect(Date.parse(meta.body.next_refresh_at)).toBeGreaterThan(Date.now());
      const score = Number(await scheduledAt(t.client, prefix, `bonjoro:${id}`));
      expect(score).toBe(Date.parse(meta.body.next_refresh_at));
    }
    // Nothing is due any more: the next sweep works on nothing.
    expect(await broker.broker.sweeper.sweepOnce()).toBe(0);
  });

  it('records a record that has no refresh token as needing the user, and takes it off the schedule', async () => {
    const prefix = 'no-refresh-token:';
    await start(prefix);
    const now = Date.now();
    const res = await broker.api('/internal/connections/bonjoro/bare', {
      method: 'PUT',
      body: { access_token: 'at-bare', expires_in: 3600 },
    });
    expect(res.status).toBe(201);
    // A record that says it can be refreshed but holds no refresh token (written by hand, or damaged).
    await t.client.hset(
      `${prefix}{bonjoro:bare}:conn`,
      'refreshable',
      '1',
      'next_refresh_at',
      String(now - 1000),
    );
    await t.client.zadd(`${prefix}schedule`, now - 1000, 'bonjoro:bare');

    await broker.broker.sweeper.sweepOnce();

    const meta = await broker.api('/internal/connections/bonjoro/bare');
    expect(meta.body).toMatchObject({
      status: 'reauthorization_required',
      refresh_failures: 1,
      next_refresh_at: null,
    });
    expect(await scheduledAt(t.client, prefix, 'bonjoro:bare')).toBeNull();
  });

  it('handles each due entry once per sweep: connections locked by a dead process do not hide the ones behind them', async () => {
    const prefix = 'locked:';
    await start(prefix);
    const now = Date.now();
    const locked = ids('locked', BROKEN);
    await importDue(prefix, locked, now - 60_000);
    await importDue(prefix, ['healthy'], now - 1000);
    for (const id of locked)
      await t.client.set(`${prefix}{bonjoro:${id}}:lock`, 'dead-process', 'PX', 60_000);
    const before = t.fake.refreshRequests.length;

    const worked = await broker.broker.sweeper.sweepOnce();

    expect(worked).toBe(BROKEN + 1);
    expect(t.fake.refreshRequests.length - before).toBe(1);
    const healthy = await broker.api('/internal/connections/bonjoro/healthy');
    expect(healthy.body.last_refreshed_at).not.toBeNull();
  });
});
