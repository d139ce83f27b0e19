import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { providerEnv, startTestBroker } from '../helpers/broker-harness';
import { BrokerProcess, ensureBuilt } from '../helpers/broker-process';
import { until } from '../helpers/until';
import { scheduledCount } from '../helpers/index-entries';

/**
 * Every broker process runs the sweeper; each due connection is claimed with the same
 * per-connection lock as a caller's refresh, so several processes sweeping the same schedule
 * refresh each due connection exactly once (docs/architecture.md, background). Real `node dist/main.js`
 * processes on one Redis; the fake provider rotates refresh tokens, so a second refresh of a
 * connection would present its imported refresh token a second time (and be refused).
 */
const PROVIDERS = ['bonjoro', 'bexio'];
const PER_PROVIDER = 100;

describe('three broker processes sweeping one schedule', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  const processes: BrokerProcess[] = [];

  const env = (): Record<string, string> => {
    const out: Record<string, string> = { REDIS_URL: redis.url };
    for (const id of PROVIDERS) Object.assign(out, providerEnv(id, fake.url));
    return out;
  };

  beforeAll(async () => {
    await ensureBuilt();
    redis = await TestRedis.start();
    // A little latency at the provider, so sweeps of the three processes overlap.
    fake = await FakeProvider.start({ rotateRefreshTokens: true, tokenDelayMs: 20 });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await fake?.close();
    await redis?.close();
  });

  it('refreshes each of 200 due connections exactly once', async () => {
    for (let i = 0; i < 3; i++) {
      processes.push(
        await BrokerProcess.start({
          ...env(),
          SWEEP_INTERVAL: '0.5',
          KEEPALIVE_AFTER: '3600',
          LOG_LEVEL: 'warn',
        }),
      );
    }

    // Imported through a broker whose keep-alive is 2 s: all 200 fall due while the three sweep.
    const importer = await startTestBroker({ ...env(), KEEPALIVE_AFTER: '2' });
    const imported = new Map<string, string>();
    try {
      for (const provider of PROVIDERS) {
        await Promise.all(
          Array.from({ length: PER_PROVIDER }, async (_, i) => {
            const id = `swept-${i}`;
            const rt = `rt-${provider}-${i}`;
            fake.liveRefreshTokens.add(rt);
            imported.set(rt, `${provider}:${id}`);
            const res = await importer.api(`/internal/connections/${provider}/${id}`, {
              method: 'PUT',
              body: { access_token: `at-${provider}-${i}`, refresh_token: rt, expires_in: 3600 },
            });
            expect(res.status).toBe(201);
          }),
        );
      }
    } finally {
      await importer.close();
    }
    expect(await scheduledCount(redis.client(), 'ob:')).toBe(200);

    const presented = () => fake.refreshRequests.filter((r) => imported.has(r.params.refresh_token ?? ''));
    await until(
      () => (new Set(presented().map((r) => r.params.refresh_token)).size === 200 ? true : undefined),
      30_000,
    );
    // A few more sweeps of every process: a second refresh would show now.
    await new Promise((r) => setTimeout(r, 1500));

    const perToken = new Map<string, number>();
    for (const r of presented())
      perToken.set(r.params.refresh_token!, (perToken.get(r.params.refresh_token!) ?? 0) + 1);
    expect(perToken.size).toBe(200);
    expect([...perToken.values()].filter((count) => count !== 1)).toEqual([]);
    expect(fake.refreshRequests).toHaveLength(200);

    const listing = await processes[0]!.api('/internal/connections?limit=1000');
    expect(listing.status).toBe(200);
    expect(listing.body.connections).toHaveLength(200);
    for (const c of listing.body.connections) {
      expect(c).toMatchObject({ status: 'active', refresh_failures: 0, last_error: null });
      expect(c.last_refreshed_at).not.toBeNull();
      // Planned an hour ahead by the process that refreshed it.
      expect(Date.parse(c.next_refresh_at) - Date.parse(c.last_refreshed_at)).toBe(3_600_000);
    }

    // The processes' own counts add up to 200 successful keep-alive refreshes.
    const counts = await Promise.all(
      processes.map(async (p) => {
        const text = String((await p.api('/metrics')).body);
        return [...text.matchAll(/^oauth_broker_refreshes_total\{([^}]*)\} (\d+)/gm)]
          .filter((m) => m[1]!.includes('outcome="success"') && m[1]!.includes('trigger="keepalive"'))
          .reduce((sum, m) => sum + Number(m[2]), 0);
      }),
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBe(200);

    // SIGTERM stops each sweeper and exits 0.
    for (const p of processes) expect(await p.stop('SIGTERM')).toBe(0);
  }, 90_000);
});
