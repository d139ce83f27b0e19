import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { BrokerProcess, ensureBuilt } from '../helpers/broker-process';
import { FakeProvider, RecordedRequest, defaultTokenHandler } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { untilTrue as until } from '../helpers/until';

/**
 * The window no lock can close: the provider has answered a refresh (and, rotating, killed the
 * old refresh token) but the broker dies before it writes the new tokens. The provider's side
 * is simulated exactly: it consumes the refresh token and mints the new pair, then the broker
 * is SIGKILLed before the answer can reach it.
 */
describe('crash between the provider answering a refresh and the broker storing it', () => {
  let redis: TestRedis;
  let env: Record<string, string>;
  const started: BrokerProcess[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    redis = await TestRedis.start();
  }, 90_000);

  afterAll(async () => {
    await Promise.all(started.map((b) => b.stop('SIGKILL')));
    await redis?.close();
  });

  async function scenario(rotate: boolean, id: string) {
    const fake = await FakeProvider.start({ rotateRefreshTokens: rotate });
    env = {
      REDIS_URL: redis.url,
      ...providerEnv('jobber', fake.url),
      PROVIDER_TIMEOUT: '1',
      SWEEP_INTERVAL: '0.3',
      REDIS_KEY_PREFIX: `${id}:`,
    };
    const [a, b] = await Promise.all([BrokerProcess.start(env), BrokerProcess.start(env)]);
    started.push(a, b);
    const minted = fake.mint();
    const put = await a.api(`/internal/connections/jobber/${id}`, {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 5 },
    });
    expect(put.status).toBe(201);

    let lost: RecordedRequest | undefined;
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token' && !lost) {
        lost = req;
        // The provider does its part (with rotation the presented refresh token dies here) ...
        const answer = provider.mint();
        if (rotate) provider.liveRefreshTokens.delete(req.params.refresh_token!);
        else provider.liveRefreshTokens.delete(answer.refresh_token as string);
        // ... and the broker dies before the answer is written to Redis.
        await a.kill();
        res.destroy();
        return;
      }
      return defaultTokenHandler(req, res, provider);
    });
    const onA = a.api(`/internal/connections/jobber/${id}/token`).catch(() => 'killed' as const);
    await until(() => lost !== undefined);
    expect(await onA).toBe('killed');
    return { fake, a, b, presented: lost!.params.refresh_token };
  }

  it('with rotation: the next call answers 409 reauthorization_required once the dead lock expires, and nothing retries in a loop', async () => {
    const { fake, b, presented } = await scenario(true, 'rot');
    const next = await b.api('/internal/connections/jobber/rot/token', { timeoutMs: 30_000 });
    expect(next.status).toBe(409);
    expect(next.body.code).toBe('reauthorization_required');
    // The survivor presented the stored (old) refresh token, which the provider had rotated away.
    expect(fake.refreshRequests.map((r) => r.params.refresh_token)).toEqual([presented, presented]);

    // From now on: 409 at once, no further call to the provider, by callers or in the background.
    const third = await BrokerProcess.start(env);
    started.push(third);
    for (const broker of [b, third, b]) {
      const again = await broker.api('/internal/connections/jobber/rot/token?force_refresh=true');
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('reauthorization_required');
    }
    await new Promise((r) => setTimeout(r, 1500)); // several sweeps
    expect(fake.refreshRequests.length).toBe(2);
    const meta = await b.api('/internal/connections/jobber/rot');
    expect(meta.body).toMatchObject({
      status: 'reauthorization_required',
      next_refresh_at: null,
      refresh_failures: 1,
    });
    expect(meta.body.last_error.code).toBe('reauthorization_required');

    // The way out is the user connecting again: a fresh start.
    const reconnect = fake.mint();
    const put = await b.api('/internal/connections/jobber/rot', {
      method: 'PUT',
      body: {
        access_token: reconnect.access_token,
        refresh_token: reconnect.refresh_token,
        expires_in: 3600,
      },
    });
    expect(put.status).toBe(200);
    expect((await b.api('/internal/connections/jobber/rot/token')).body.access_token).toBe(
      reconnect.access_token,
    );
    await fake.close();
  });

  it('without rotation: the survivor refreshes again with the same refresh token and serves a new token', async () => {
    const { fake, b, presented } = await scenario(false, 'norot');
    const next = await b.api('/internal/connections/jobber/norot/token', { timeoutMs: 30_000 });
    expect(next.status).toBe(200);
    expect(fake.refreshRequests.map((r) => r.params.refresh_token)).toEqual([presented, presented]);
    expect(next.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
    expect((await b.api('/internal/connections/jobber/norot')).body.status).toBe('active');
    await fake.close();
  });
});

/**
 * The same window with the process alive: the provider answers, then Redis is gone before the
 * write. The caller learns that the store failed (503), not that the provider did, and the broker
 * keeps the answer and stores it when Redis is back, so a short outage loses no rotated token.
 */
describe('Redis gone between the provider answering a refresh and the write', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: TestBroker;

  beforeAll(async () => {
    // Append-only: what was stored before the outage is there after it.
    redis = await TestRedis.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      ...providerEnv('jobber', fake.url),
      LOG_LEVEL: 'warn',
      // The lock the failed write could not release outlives the outage: keep its life short.
      PROVIDER_TIMEOUT: '1',
    });
    broker.broker.redis.on('error', () => undefined);
  });

  afterAll(async () => {
    await broker.close();
    await fake.close();
    await redis.close();
  });

  it('answers 503 store_unavailable, then stores the rotated tokens once Redis is back: nothing lost', async () => {
    const minted = fake.mint();
    await broker.api('/internal/connections/jobber/late', {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
    });
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token') await redis.stop();
      return defaultTokenHandler(req, res, provider);
    });
    const failed = await broker.api('/internal/connections/jobber/late/token?force_refresh=true');
    expect(failed.status).toBe(503);
    expect(failed.body.code).toBe('store_unavailable');
    const lost = fake.issued[fake.issued.length - 1]!;
    expect(minted.refresh_token).not.toBe(lost.refresh_token);
    // The operator can see which connection's refresh is pending, and no token is in the log.
    const line = broker.logs.find((l) => l.includes('not stored'));
    expect(line).toBeDefined();
    expect(line).toContain('"connection_id":"late"');
    expect(broker.logs.join('\n')).not.toContain(lost.refresh_token!);
    expect(broker.logs.join('\n')).not.toContain(lost.access_token);

    fake.onToken(undefined);
    await redis.startProcess();
    let next = await broker.api('/internal/connections/jobber/late/token');
    for (let i = 0; i < 50 && (next.status !== 200 || next.body.access_token !== lost.access_token); i++) {
      await new Promise((r) => setTimeout(r, 100));
      next = await broker.api('/internal/connections/jobber/late/token');
    }
    expect(next.status).toBe(200);
    expect(next.body.access_token).toBe(lost.access_token);
    expect(broker.logs.some((l) => l.includes('refresh stored late'))).toBe(true);
    expect(fake.refreshRequests).toHaveLength(1);

    // The rotated refresh token was stored too: the next refresh presents it, and the provider takes it.
    const forced = await broker.api('/internal/connections/jobber/late/token?force_refresh=true', {
      headers: {},
    });
    expect(forced.status).toBe(200);
    expect(fake.refreshRequests[1]!.params.refresh_token).toBe(lost.refresh_token);
    expect((await broker.api('/internal/connections/jobber/late')).body.status).toBe('active');
  });
});
