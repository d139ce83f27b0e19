import Redis from 'ioredis';
import { loadConfig } from '../../src/config/load-config';
import { CliContext, createCliContext } from '../../src/cli/cli-context';
import { keysStatus, rekey } from '../../src/cli/keys-commands';
import { TestBroker, baseEnv, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { isIndexed, scheduledAt, unindex, unschedule } from '../helpers/index-entries';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';

/**
 * A record, its listing-index entry and its schedule entry are written in separate round trips
 * (on Cluster they live on different masters). A crash between them must be harmless: entries go
 * in before the record and out after it, readers drop entries without a record, and `keys
 * status`, `keys rekey` and the sweeper find records by SCAN, putting back what the index or the
 * schedule lacks.
 */
const K1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
const K2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;

describe('index and schedule entries survive a crash between the writes', () => {
  let redis: TestRedis;
  let admin: Redis;
  let fake: FakeProvider;
  const brokers: TestBroker[] = [];
  const contexts: CliContext[] = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
    admin = redis.client();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
  });

  afterAll(async () => {
    for (const b of brokers) await b.close();
    for (const c of contexts) await c.close();
    admin?.disconnect();
    await fake?.close();
    await redis?.close();
  });

  const envFor = (prefix: string, keys = K1): Record<string, string> => ({
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    TOKEN_ENCRYPTION_KEYS: keys,
    ...providerEnv('bonjoro', fake.url),
  });

  async function start(prefix: string, extra: Record<string, string> = {}): Promise<TestBroker> {
    const broker = await startTestBroker({ ...envFor(prefix), ...extra });
    brokers.push(broker);
    return broker;
  }

  async function importOne(broker: TestBroker, id: string, expiresIn = 3600): Promise<void> {
    const minted = fake.mint();
    const res = await broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: expiresIn },
    });
    expect(res.status).toBe(201);
  }

  /** As a crash between the record's write and its entries' would leave it. */
  async function dropEntries(prefix: string, id: string): Promise<void> {
    await unindex(admin, prefix, `bonjoro:${id}`);
    await unschedule(admin, prefix, `bonjoro:${id}`);
  }

  async function cli(prefix: string, keys: string): Promise<CliContext> {
    const ctx = await createCliContext(loadConfig({ ...baseEnv(9), ...envFor(prefix, keys) }));
    contexts.push(ctx);
    return ctx;
  }

  it('keys status counts, and keys rekey re-seals, a record the index lost; the index gets it back', async () => {
    const prefix = 'lost-index:';
    const broker = await start(prefix);
    for (const id of ['a', 'b', 'hidden']) await importOne(broker, id);
    await dropEntries(prefix, 'hidden');

    const ctx = await cli(prefix, `${K2},${K1}`);
    expect(await keysStatus(ctx)).toEqual(new Map([['k1', 3]]));
    const report = await rekey(ctx, { busyWaitMs: 1000 });
    expect(report).toMatchObject({ total: 3, resealed: 3, remaining: 0, failed: [] });
    expect(await admin.hget(`${prefix}{bonjoro:hidden}:conn`, 'key_id')).toBe('k2');
    expect(await isIndexed(admin, prefix, 'bonjoro:hidden')).toBe(true);
    expect(await keysStatus(ctx)).toEqual(new Map([['k2', 3]]));
  });

  it('the sweeper puts back the schedule entry a record lost, and its due work is done', async () => {
    const prefix = 'lost-schedule:';
    const broker = await start(prefix, { SWEEP_INTERVAL: '0.2' });
    await importOne(broker, 'due');
    await dropEntries(prefix, 'due');
    const dueAt = Date.now() - 1000;
    await admin.hset(`${prefix}{bonjoro:due}:conn`, 'next_refresh_at', String(dueAt));

    // The sweeper as a broker runs it: its repair timer puts the entry back, a sweep does the work.
    broker.broker.sweeper.start();
    const meta = await until(async () => {
      const res = await broker.api('/internal/connections/bonjoro/due');
      return res.body.last_refreshed_at ? res.body : undefined;
    });
    expect(meta.refresh_failures).toBe(0);
    expect(await isIndexed(admin, prefix, 'bonjoro:due')).toBe(true);
    // One process of many scans per repair interval: the lease is taken.
    expect(await admin.pttl(`${prefix}repair-lease`)).toBeGreaterThan(0);
  });

  it('a connect whose process dies right after the record write leaves the connection listed and scheduled', async () => {
    const prefix = 'crash-after-write:';
    const broker = await start(prefix, { KEEPALIVE_AFTER: '3600' });
    const client = broker.broker.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = client.obWrite!;
    // The record's write lands; the process is gone before anything after it.
    client.obWrite = async (...args: unknown[]) => {
      client.obWrite = async () => Promise.reject(new Error('Connection is closed.'));
      await original.apply(client, args);
      throw new Error('Connection is closed.');
    };
    const minted = fake.mint();
    const put = await broker.api('/internal/connections/bonjoro/crashed', {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
    });
    expect(put.status).toBeGreaterThanOrEqual(500);
    client.obWrite = original;
    expect(await admin.exists(`${prefix}{bonjoro:crashed}:conn`)).toBe(1);
    expect(await isIndexed(admin, prefix, 'bonjoro:crashed')).toBe(true);
    expect(await scheduledAt(admin, prefix, 'bonjoro:crashed')).not.toBeNull();
    const listed = await broker.api('/internal/connections?provider=bonjoro');
    expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([
      'crashed',
    ]);
  });

  it('entries a crash left without a record are dropped by the listing and the sweeper', async () => {
    const prefix = 'stale-entries:';
    const broker = await start(prefix);
    await importOne(broker, 'real');
    // In the single index set an older version kept: listed, and dropped, like a chunk's entry.
    await admin.zadd(`${prefix}connections`, 0, 'bonjoro:ghost');
    await admin.zadd(`${prefix}schedule`, Date.now() - 1000, 'bonjoro:ghost');

    const listed = await broker.api('/internal/connections?provider=bonjoro');
    expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual(['real']);
    await broker.broker.sweeper.sweepOnce();
    await until(async () => ((await isIndexed(admin, prefix, 'bonjoro:ghost')) ? undefined : true));
    expect(await scheduledAt(admin, prefix, 'bonjoro:ghost')).toBeNull();
  });

  it('a read whose schedule update fails is noted again by the next read: schedule and record agree', async () => {
    const prefix = 'mark-read:';
    const broker = await start(prefix, { REFRESH_MARGIN: '2' });
    await importOne(broker, 'read', 30);
    const client = broker.broker.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = client.obScheduleSet!;
    let failed = 0;
    // The schedule's write (src/connections/due-schedule.ts) fails once, as a lost connection would.
    client.obScheduleSet = async (...args: unknown[]) => {
      if (failed === 0) {
        failed += 1;
        throw new Error('Connection is closed.');
      }
      return original.apply(client, args);
    };
    try {
      expect((await broker.api('/internal/connections/bonjoro/read/token')).status).toBe(200);
      await until(() => (failed === 1 ? true : undefined));
      await new Promise((r) => setTimeout(r, 100));
      expect((await broker.api('/internal/connections/bonjoro/read/token')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      client.obScheduleSet = original;
    }
    const recordAt = Number(await admin.hget(`${prefix}{bonjoro:read}:conn`, 'next_refresh_at'));
    expect(recordAt).toBeGreaterThan(0);
    expect(Number(await scheduledAt(admin, prefix, 'bonjoro:read'))).toBe(recordAt);
  });
});
