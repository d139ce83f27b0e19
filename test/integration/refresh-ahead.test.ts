import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';
import { scheduledAt } from '../helpers/index-entries';

/**
 * Refresh-ahead (docs/configuration.md, REFRESH_AHEAD): a connection the token API answered since its last
 * refresh is refreshed by the sweeper in the last 60 s before it turns stale (expires_at −
 * REFRESH_MARGIN), so its next caller finds a fresh token. With REFRESH_MARGIN 2 and tokens of
 * 7 s, a token is inside that window from the moment it is issued: the work is due at once.
 */
const MARGIN_S = 2;
const LIFE_S = 7;
const DAY_MS = 86_400_000;

describe('refresh-ahead: busy connections are refreshed in the background', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: TestBroker;
  let n = 0;

  /** Imports a connection whose refresh token the fake accepts; answers its id and refresh token. */
  async function importConnection(
    target: TestBroker,
    expiresIn = LIFE_S,
  ): Promise<{ id: string; rt: string; at: string }> {
    n += 1;
    const id = `acct-${n}`;
    const rt = `rt-imported-${n}`;
    const at = `at-imported-${n}`;
    fake.liveRefreshTokens.add(rt);
    const res = await target.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: at, refresh_token: rt, expires_in: expiresIn },
    });
    expect(res.status).toBe(201);
    return { id, rt, at };
  }

  const refreshesOf = (rt: string) => fake.refreshRequests.filter((r) => r.params.refresh_token === rt);
  const meta = async (target: TestBroker, id: string) =>
    (await target.api(`/internal/connections/bonjoro/${id}`)).body;
  const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start({ expiresIn: LIFE_S, rotateRefreshTokens: true });
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'ahead:',
      REFRESH_MARGIN: String(MARGIN_S),
      SWEEP_INTERVAL: '0.2',
      ...providerEnv('bonjoro', fake.url),
    });
  });

  afterAll(async () => {
    await broker?.close();
    await fake?.close();
    await redis?.close();
  });

  it('refreshes a connection read through the token API before it turns stale, so the next caller does not reach the provider', async () => {
    const c = await importConnection(broker);
    const before = await meta(broker, c.id);
    // Not read yet: only keep-alive (7 days by default) is planned.
    expect(ms(before.next_refresh_at)! - Date.now()).toBeGreaterThan(DAY_MS);

    const readAt = Date.now();
    const first = await broker.api(`/internal/connections/bonjoro/${c.id}/token`);
    expect(first.status).toBe(200);
    expect(first.body.access_token).toBe(c.at);
    expect(refreshesOf(c.rt)).toHaveLength(0);

    // next_refresh_at shows the plan: inside the 60 s before the token turns stale.
    const planned = await until(async () => {
      const m = await meta(broker, c.id);
      return ms(m.next_refresh_at)! < ms(before.next_refresh_at)! ? m : undefined;
    });
    const staleAt = ms(planned.expires_at)! - MARGIN_S * 1000;
    expect(ms(planned.next_refresh_at)).toBeLessThanOrEqual(staleAt);
    expect(ms(planned.next_refresh_at)).toBeGreaterThanOrEqual(staleAt - 60_000);
    // Read inside the window: due now, not at a moment already long past.
    expect(ms(planned.next_refresh_at)).toBeGreaterThanOrEqual(readAt - 50);
    const score = await scheduledAt(redis.client(), 'ahead:', `bonjoro:${c.id}`);
    expect(Number(score)).toBe(ms(planned.next_refresh_at));

    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(c.rt)).toHaveLength(1);
    const minted = fake.issued[fake.issued.length - 1]!;

    const after = await meta(broker, c.id);
    expect(after.status).toBe('active');
    expect(after.last_refreshed_at).not.toBeNull();
    expect(after.refresh_failures).toBe(0);
    // Refreshed and not read since: back to keep-alive until someone reads it again.
    expect(ms(after.next_refresh_at)! - Date.now()).toBeGreaterThan(DAY_MS);

    const requestsBefore = fake.tokenRequests.length;
    const next = await broker.api(`/internal/connections/bonjoro/${c.id}/token`);
    expect(next.status).toBe(200);
    expect(next.body.access_token).toBe(minted.access_token);
    expect(fake.tokenRequests.length).toBe(requestsBefore);
  });

  it('does not refresh ahead a connection nobody reads', async () => {
    const unread = await importConnection(broker);
    const read = await importConnection(broker);
    expect((await broker.api(`/internal/connections/bonjoro/${read.id}/token`)).status).toBe(200);
    await until(async () =>
      ms((await meta(broker, read.id)).next_refresh_at)! < Date.now() + DAY_MS ? true : undefined,
    );

    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(read.rt)).toHaveLength(1);
    expect(refreshesOf(unread.rt)).toHaveLength(0);
    const m = await meta(broker, unread.id);
    expect(m.last_refreshed_at).toBeNull();
    expect(ms(m.next_refresh_at)! - Date.now()).toBeGreaterThan(DAY_MS);
  });

  it('refreshes by itself once the sweeper runs on its interval', async () => {
    const c = await importConnection(broker);
    expect((await broker.api(`/internal/connections/bonjoro/${c.id}/token`)).status).toBe(200);
    broker.broker.sweeper.start();
    try {
      await until(() => (refreshesOf(c.rt).length > 0 ? true : undefined), 5000);
    } finally {
      await broker.broker.sweeper.stop();
    }
    expect(refreshesOf(c.rt)).toHaveLength(1);
    expect((await meta(broker, c.id)).last_refreshed_at).not.toBeNull();
  });

  it('makes a caller that arrives during a background refresh wait for it instead of starting another', async () => {
    const c = await importConnection(broker);
    expect((await broker.api(`/internal/connections/bonjoro/${c.id}/token`)).status).toBe(200);
    await until(async () =>
      ms((await meta(broker, c.id)).next_refresh_at)! < Date.now() + DAY_MS ? true : undefined,
    );
    fake.options.tokenDelayMs = 800;
    try {
      const sweep = broker.broker.sweeper.sweepOnce();
      await until(() => (refreshesOf(c.rt).length > 0 ? true : undefined));
      // Asks for more life than the current token has left: a caller refresh, were it alone.
      const caller = await broker.api(
        `/internal/connections/bonjoro/${c.id}/token?min_validity=${LIFE_S + 30}`,
      );
      await sweep;
      expect(caller.status).toBe(200);
      expect(fake.refreshRequests.filter((r) => r.at >= refreshesOf(c.rt)[0]!.at)).toHaveLength(1);
      const minted = fake.issued[fake.issued.length - 1]!;
      expect(caller.body.access_token).toBe(minted.access_token);
    } finally {
      fake.options.tokenDelayMs = 0;
    }
  });

  it('does not refresh ahead with REFRESH_AHEAD=false: only a caller refreshes', async () => {
    const off = await startTestBroker({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'ahead-off:',
      REFRESH_MARGIN: String(MARGIN_S),
      REFRESH_AHEAD: 'false',
      ...providerEnv('bonjoro', fake.url),
    });
    try {
      const c = await importConnection(off);
      const planned = await meta(off, c.id);
      for (let i = 0; i < 3; i++)
        expect((await off.api(`/internal/connections/bonjoro/${c.id}/token`)).status).toBe(200);
      // Give a fire-and-forget read mark the time it would take, then look at the plan again.
      await new Promise((r) => setTimeout(r, 200));
      const m = await meta(off, c.id);
      expect(m.next_refresh_at).toBe(planned.next_refresh_at);
      expect(ms(m.next_refresh_at)! - Date.now()).toBeGreaterThan(DAY_MS);
      expect(await off.broker.sweeper.sweepOnce()).toBe(0);
      expect(refreshesOf(c.rt)).toHaveLength(0);

      // A caller that needs more life than is left still gets a refresh.
      const fresh = await off.api(`/internal/connections/bonjoro/${c.id}/token?min_validity=${LIFE_S + 30}`);
      expect(fresh.status).toBe(200);
      expect(refreshesOf(c.rt)).toHaveLength(1);
    } finally {
      await off.close();
    }
  });
});
