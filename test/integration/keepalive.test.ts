import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';
import { scheduledAt } from '../helpers/index-entries';
import { useRedisAndFake } from '../helpers/redis-fixture';
import { useProvidersFiles } from '../helpers/providers-file';

/**
 * Keep-alive (docs/configuration.md, KEEPALIVE_AFTER and the catalogue's `keepalive_after`): a connection
 * not refreshed for that long is refreshed in the background, so providers that expire idle
 * refresh tokens do not drop it. Tokens here live an hour: nothing but keep-alive is due.
 */
const DAY_MS = 86_400_000;

describe('keep-alive: idle connections are refreshed before a provider drops them', () => {
  const brokers: TestBroker[] = [];
  afterAll(async () => {
    for (const broker of brokers) await broker.close();
  });
  const t = useRedisAndFake({ rotateRefreshTokens: true });
  const files = useProvidersFiles('ob-keepalive');
  let providersFile: string;
  let n = 0;

  async function start(prefix: string, env: Record<string, string> = {}): Promise<TestBroker> {
    const broker = await startTestBroker({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: `${prefix}:`,
      SWEEP_INTERVAL: '0.2',
      ...providerEnv('bonjoro', t.fake.url),
      ...providerEnv('jobber', t.fake.url),
      ...env,
    });
    brokers.push(broker);
    return broker;
  }

  async function importConnection(
    broker: TestBroker,
    provider = 'bonjoro',
  ): Promise<{ id: string; rt: string; importedAt: number }> {
    n += 1;
    const id = `idle-${n}`;
    const rt = `rt-idle-${n}`;
    t.fake.liveRefreshTokens.add(rt);
    const importedAt = Date.now();
    const res = await broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: `at-idle-${n}`, refresh_token: rt, expires_in: 3600 },
    });
    expect(res.status).toBe(201);
    return { id, rt, importedAt };
  }

  const refreshesOf = (rt: string) => t.fake.refreshRequests.filter((r) => r.params.refresh_token === rt);
  const meta = async (broker: TestBroker, provider: string, id: string) =>
    (await broker.api(`/internal/connections/${provider}/${id}`)).body;
  const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

  beforeAll(() => {
    providersFile = files.write([{ id: 'bonjoro', keepalive_after: 2 }]);
  });

  it('refreshes an idle connection KEEPALIVE_AFTER seconds after its import, and plans the next one', async () => {
    const broker = await start('ka2', { KEEPALIVE_AFTER: '2' });
    const c = await importConnection(broker);
    const planned = await meta(broker, 'bonjoro', c.id);
    expect(ms(planned.next_refresh_at)! - ms(planned.updated_at)!).toBe(2000);

    // Not due yet: a sweep now leaves it alone.
    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(c.rt)).toHaveLength(0);

    broker.broker.sweeper.start();
    try {
      await until(() => (refreshesOf(c.rt).length > 0 ? true : undefined), 5000);
    } finally {
      await broker.broker.sweeper.stop();
    }
    const refresh = refreshesOf(c.rt)[0]!;
    expect(refresh.at).toBeGreaterThanOrEqual(ms(planned.next_refresh_at)!);

    const after = await meta(broker, 'bonjoro', c.id);
    expect(after.status).toBe('active');
    expect(after.refresh_failures).toBe(0);
    expect(after.last_refreshed_at).not.toBeNull();
    expect(ms(after.next_refresh_at)! - ms(after.last_refreshed_at)!).toBe(2000);

    const metrics = await broker.api('/metrics');
    expect(String(metrics.body)).toMatch(
      /oauth_broker_refreshes_total\{[^}]*provider="bonjoro"[^}]*outcome="success"[^}]*trigger="keepalive"[^}]*\} 1/,
    );
  });

  it('keeps an idle connection alive again and again while nobody uses it', async () => {
    const broker = await start('ka-repeat', { KEEPALIVE_AFTER: '1' });
    const c = await importConnection(broker);
    broker.broker.sweeper.start();
    try {
      // The first refresh rotates the refresh token; the second keep-alive presents the new one.
      await until(
        () =>
          t.fake.refreshRequests.filter((r) => r.at > c.importedAt + 1500 && r.params.refresh_token !== c.rt)
            .length > 0
            ? true
            : undefined,
        6000,
      );
    } finally {
      await broker.broker.sweeper.stop();
    }
    const m = await meta(broker, 'bonjoro', c.id);
    expect(m.status).toBe('active');
    expect(m.refresh_failures).toBe(0);
    expect(refreshesOf(c.rt)).toHaveLength(1);
  });

  it('KEEPALIVE_AFTER=0 turns keep-alive off, whatever the provider declares', async () => {
    const broker = await start('ka0', { KEEPALIVE_AFTER: '0', PROVIDERS_FILE: providersFile });
    const c = await importConnection(broker);
    const m = await meta(broker, 'bonjoro', c.id);
    expect(m.next_refresh_at).toBeNull();
    expect(await scheduledAt(t.redis.client(), 'ka0:', `bonjoro:${c.id}`)).toBeNull();

    await new Promise((r) => setTimeout(r, 2200));
    expect(await broker.broker.sweeper.sweepOnce()).toBe(0);
    expect(refreshesOf(c.rt)).toHaveLength(0);
  });

  it("uses the provider's keepalive_after from PROVIDERS_FILE when KEEPALIVE_AFTER is unset, else 7 days", async () => {
    const broker = await start('ka-provider', { PROVIDERS_FILE: providersFile });
    const declared = await importConnection(broker, 'bonjoro');
    const undeclared = await importConnection(broker, 'jobber');
    const a = await meta(broker, 'bonjoro', declared.id);
    const b = await meta(broker, 'jobber', undeclared.id);
    expect(ms(a.next_refresh_at)! - ms(a.updated_at)!).toBe(2000);
    expect(ms(b.next_refresh_at)! - ms(b.updated_at)!).toBe(7 * DAY_MS);

    await new Promise((r) => setTimeout(r, Math.max(0, ms(a.next_refresh_at)! - Date.now()) + 100));
    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(declared.rt)).toHaveLength(1);
    expect(refreshesOf(undeclared.rt)).toHaveLength(0);
  });

  it("KEEPALIVE_AFTER, when set, wins over the provider's keepalive_after", async () => {
    const broker = await start('ka-override', { PROVIDERS_FILE: providersFile, KEEPALIVE_AFTER: '3600' });
    const c = await importConnection(broker, 'bonjoro');
    const m = await meta(broker, 'bonjoro', c.id);
    expect(ms(m.next_refresh_at)! - ms(m.updated_at)!).toBe(3_600_000);
  });
});
