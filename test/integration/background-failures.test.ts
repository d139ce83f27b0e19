import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { FakeProvider, defaultTokenHandler } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';
import { scheduledAt } from '../helpers/index-entries';

/**
 * Background refreshes that fail (docs/api.md, details of the answers): every failure
 * adds to refresh_failures and is retried with exponential backoff from about SWEEP_INTERVAL,
 * doubling, up to an hour, with next_refresh_at showing the next try; the tokens stay as they
 * were. invalid_grant flips the status to reauthorization_required and takes the connection off
 * the schedule until the user connects again.
 */
const SWEEP_S = 0.5;
const WEBHOOK_SECRET = 'background-failures-webhook-secret-0123456789';

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now()) + 30));

describe('background refresh failures: backoff, nothing else changes; invalid_grant leaves the schedule', () => {
  let redis: TestRedis;
  let client: Redis;
  let fake: FakeProvider;
  let receiver: Server;
  let receiverUrl: string;
  const deliveries: Array<{ headers: Record<string, unknown>; body: any }> = [];
  const brokers: TestBroker[] = [];
  /**
   * Refresh tokens the fake answers with 429 (a provider that rate-limits the broker: the case
   * backoff is for). A 429 is not repeated within one refresh, unlike a 5xx, so the process's
   * circuit breaker (5 failures in a row) stays closed through three tries and the recovery.
   */
  const failing = new Set<string>();
  let n = 0;

  /** A broker of its own per test: the per-provider circuit breaker lives in the process. */
  async function start(prefix: string, env: Record<string, string> = {}): Promise<TestBroker> {
    const broker = await startTestBroker({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${prefix}:`,
      SWEEP_INTERVAL: String(SWEEP_S),
      KEEPALIVE_AFTER: '1',
      ...providerEnv('bonjoro', fake.url),
      ...env,
    });
    brokers.push(broker);
    return broker;
  }

  async function importConnection(broker: TestBroker, options: { live?: boolean } = {}) {
    n += 1;
    const id = `bg-${n}`;
    const rt = `rt-bg-${n}`;
    if (options.live !== false) fake.liveRefreshTokens.add(rt);
    const res = await broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: `at-bg-${n}`, refresh_token: rt, expires_in: 3600 },
    });
    expect(res.status).toBe(201);
    return { id, rt, at: `at-bg-${n}`, next: ms(res.body.next_refresh_at)! };
  }

  const refreshesOf = (rt: string) => fake.refreshRequests.filter((r) => r.params.refresh_token === rt);
  const meta = async (broker: TestBroker, id: string) =>
    (await broker.api(`/internal/connections/bonjoro/${id}`)).body;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    fake.onToken((req, res, provider) => {
      if (req.params.grant_type === 'refresh_token' && failing.has(req.params.refresh_token ?? '')) {
        return void res.status(429).json({ error: 'slow_down' });
      }
      return defaultTokenHandler(req, res, provider);
    });
    receiver = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body: JSON.parse(raw) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });

  afterAll(async () => {
    for (const broker of brokers) await broker.close();
    client?.disconnect();
    await fake?.close();
    await new Promise((r) => receiver?.close(r));
    await redis?.close();
  });

  it('counts failures, backs off from about SWEEP_INTERVAL doubling, leaves the tokens alone, and recovers', async () => {
    const broker = await start('backoff');
    const c = await importConnection(broker);
    failing.add(c.rt);
    const sealedKey = `backoff:{bonjoro:${c.id}}:sealed`;
    const sealedBefore = await client.getBuffer(sealedKey);
    expect(sealedBefore).toBeTruthy();
    const metaBefore = await meta(broker, c.id);

    await sleepUntil(c.next);
    const deltas: number[] = [];
    for (let failures = 1; failures <= 3; failures++) {
      await broker.broker.sweeper.sweepOnce();
      const m = await meta(broker, c.id);
      expect(m.refresh_failures).toBe(failures);
      expect(m.status).toBe('active');
      expect(m.last_error.code).toBe('provider_unavailable');
      expect(m.expires_at).toBe(metaBefore.expires_at);
      expect(m.key_id).toBe(metaBefore.key_id);
      expect(await client.getBuffer(sealedKey)).toEqual(sealedBefore);
      expect(Number(await scheduledAt(client, 'backoff:', `bonjoro:${c.id}`))).toBe(ms(m.next_refresh_at));
      deltas.push(ms(m.next_refresh_at)! - ms(m.last_error.at)!);

      // Before the next try is due, sweeps leave the failing provider alone (checked when the
      // sweep surely looked before then: a slow machine may take longer than the backoff).
      const seen = fake.refreshRequests.length;
      await broker.broker.sweeper.sweepOnce();
      if (Date.now() < ms(m.next_refresh_at)!) expect(fake.refreshRequests.length).toBe(seen);
      await sleepUntil(ms(m.next_refresh_at)!);
    }
    // About SWEEP_INTERVAL (±10 % jitter), then doubling.
    expect(deltas[0]).toBeGreaterThanOrEqual(SWEEP_S * 1000 * 0.9);
    expect(deltas[0]).toBeLessThanOrEqual(SWEEP_S * 1000 * 1.1);
    expect(deltas[1]).toBeGreaterThanOrEqual(SWEEP_S * 2000 * 0.9);
    expect(deltas[1]).toBeLessThanOrEqual(SWEEP_S * 2000 * 1.1);
    expect(deltas[2]).toBeGreaterThanOrEqual(SWEEP_S * 4000 * 0.9);
    expect(deltas[2]).toBeLessThanOrEqual(SWEEP_S * 4000 * 1.1);

    // The caller still gets the token it had, unchanged.
    const token = await broker.api(`/internal/connections/bonjoro/${c.id}/token?min_validity=0`);
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(c.at);

    const metrics = String((await broker.api('/metrics')).body);
    expect(metrics).toMatch(
      /oauth_broker_refreshes_total\{[^}]*outcome="unavailable"[^}]*trigger="keepalive"[^}]*\} 1/,
    );
    expect(metrics).toMatch(
      /oauth_broker_refreshes_total\{[^}]*outcome="unavailable"[^}]*trigger="retry"[^}]*\} 2/,
    );

    // The provider comes back: the next try (due now) succeeds and the plan returns to keep-alive.
    failing.delete(c.rt);
    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(c.rt)).toHaveLength(4);
    const healed = await meta(broker, c.id);
    expect(healed.refresh_failures).toBe(0);
    expect(healed.last_error).toBeNull();
    expect(healed.last_refreshed_at).not.toBeNull();
    expect(ms(healed.next_refresh_at)! - ms(healed.last_refreshed_at)!).toBe(1000);
  });

  it('flips an invalid_grant in the background to reauthorization_required, clears the schedule and emits the webhook', async () => {
    const broker = await start('grant', { WEBHOOK_URL: receiverUrl, WEBHOOK_SECRET });
    const c = await importConnection(broker, { live: false });
    const sealedKey = `grant:{bonjoro:${c.id}}:sealed`;
    const sealedBefore = await client.getBuffer(sealedKey);
    expect(sealedBefore).toBeTruthy();
    expect(await scheduledAt(client, 'grant:', `bonjoro:${c.id}`)).not.toBeNull();

    await sleepUntil(c.next);
    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(c.rt)).toHaveLength(1);

    const m = await meta(broker, c.id);
    expect(m.status).toBe('reauthorization_required');
    expect(m.next_refresh_at).toBeNull();
    expect(m.refresh_failures).toBe(1);
    expect(m.last_error.code).toBe('reauthorization_required');
    expect(await scheduledAt(client, 'grant:', `bonjoro:${c.id}`)).toBeNull();
    // The record keeps its data.
    expect(await client.getBuffer(sealedKey)).toEqual(sealedBefore);

    const token = await broker.api(`/internal/connections/bonjoro/${c.id}/token`);
    expect(token.status).toBe(409);
    expect(token.body.code).toBe('reauthorization_required');

    // Later sweeps do not try it again.
    await new Promise((r) => setTimeout(r, 1200));
    await broker.broker.sweeper.sweepOnce();
    expect(refreshesOf(c.rt)).toHaveLength(1);

    const delivery = await until(async () => {
      await broker.broker.webhooks!.deliverDue();
      return deliveries.find(
        (d) => d.body.connection_id === c.id && d.body.type === 'connection.reauthorization_required',
      );
    });
    expect(delivery.headers['x-broker-event']).toBe('connection.reauthorization_required');
    expect(delivery.body).toMatchObject({
      provider: 'bonjoro',
      connection_id: c.id,
      reason: 'invalid_grant',
    });

    // The user connects again (an import here): active and back on the schedule.
    fake.liveRefreshTokens.add(`${c.rt}-new`);
    const again = await broker.api(`/internal/connections/bonjoro/${c.id}`, {
      method: 'PUT',
      body: { access_token: `${c.at}-new`, refresh_token: `${c.rt}-new`, expires_in: 3600 },
    });
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('active');
    expect(again.body.refresh_failures).toBe(0);
    expect(ms(again.body.next_refresh_at)).not.toBeNull();
    expect(Number(await scheduledAt(client, 'grant:', `bonjoro:${c.id}`))).toBe(
      ms(again.body.next_refresh_at),
    );
  });

  it("keeps the status when the provider refuses the broker's client credentials in the background, and backs off", async () => {
    const broker = await start('client');
    const c = await importConnection(broker);
    await sleepUntil(c.next);
    fake.failNext(1, 401, { error: 'invalid_client' });
    await broker.broker.sweeper.sweepOnce();
    const m = await meta(broker, c.id);
    expect(refreshesOf(c.rt)).toHaveLength(1);
    expect(m.status).toBe('active');
    expect(m.refresh_failures).toBe(1);
    expect(m.last_error.code).toBe('provider_rejected_client');
    expect(ms(m.next_refresh_at)! - ms(m.last_error.at)!).toBeGreaterThanOrEqual(SWEEP_S * 1000 * 0.9);
    expect(Number(await scheduledAt(client, 'client:', `bonjoro:${c.id}`))).toBe(ms(m.next_refresh_at));
  });
});
