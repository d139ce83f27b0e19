import { BrokerProcess } from '../helpers/broker-process';
import { defaultTokenHandler } from '../helpers/fake-provider';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';
import { scheduledAt } from '../helpers/index-entries';
import { useRedisAndFake } from '../helpers/redis-fixture';

/**
 * SIGTERM while the sweeper has a background refresh in flight (a real `node dist/main.js`): the
 * sweeper is stopped first, starts nothing more, and its refresh runs to the end, so the tokens
 * the provider answered (with rotation, the only refresh token that still works) are stored
 * before Redis closes and the process exits 0.
 */
const PREFIX = 'sigterm:';
const TOKEN_DELAY_MS = 1500;

describe('SIGTERM in the middle of a background refresh', () => {
  let broker: BrokerProcess | undefined;
  let reader: TestBroker | undefined;
  afterAll(async () => {
    await broker?.kill();
    await reader?.close();
  });
  const t = useRedisAndFake({ rotateRefreshTokens: true }, { build: true });
  /** Refresh requests the fake has received, and those it has finished answering. */
  const started: string[] = [];
  const answered: Array<{ presented: string; at: number; status: number }> = [];

  it('lets the refresh under way finish and store the rotated tokens, starts no other, and exits 0', async () => {
    broker = await BrokerProcess.start({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: PREFIX,
      // Due a second after import; looked for every 0.2 s; one refresh at a time for the provider,
      // so the second due connection waits behind the first.
      KEEPALIVE_AFTER: '1',
      SWEEP_INTERVAL: '0.2',
      SWEEP_CONCURRENCY_PER_PROVIDER: '1',
      // Shorter than the refresh: the sweeper's own stop() must hold the exit, not the wait for
      // requests in flight (SHUTDOWN_TIMEOUT bounds those, never a refresh the provider answers).
      SHUTDOWN_TIMEOUT: '0.3',
      ...providerEnv('bonjoro', t.fake.url),
    });

    t.fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type !== 'refresh_token') return defaultTokenHandler(req, res, provider);
      const presented = req.params.refresh_token ?? '';
      started.push(presented);
      res.on('finish', () => answered.push({ presented, at: Date.now(), status: res.statusCode }));
      await new Promise((r) => setTimeout(r, TOKEN_DELAY_MS));
      defaultTokenHandler(req, res, provider);
    });

    const ids = ['first', 'second'];
    for (const id of ids) {
      t.fake.liveRefreshTokens.add(`rt-${id}`);
      const res = await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600 },
      });
      expect(res.status).toBe(201);
    }

    // The sweeper has taken one of them to the provider: SIGTERM while the provider thinks.
    await until(() => (started.length > 0 ? true : undefined));
    const signalledAt = Date.now();
    const exitCode = await broker.stop('SIGTERM', 15_000);
    const exitedAt = Date.now();

    expect({ exitCode, signal: broker.exitSignal }).toEqual({ exitCode: 0, signal: null });
    expect(broker.stderr).toBe('');
    // The provider answered that refresh, before the process went away.
    expect(answered).toHaveLength(1);
    expect(answered[0]!.status).toBe(200);
    expect(answered[0]!.at).toBeLessThanOrEqual(exitedAt);
    expect(exitedAt - signalledAt).toBeLessThan(TOKEN_DELAY_MS + 5000);
    // No new work after SIGTERM: the other due connection never reached the provider.
    expect(started).toHaveLength(1);
    const refreshed = started[0]!.replace(/^rt-/, '');
    const waiting = ids.find((id) => id !== refreshed)!;
    expect(ids).toContain(refreshed);
    expect(broker.logs().filter((l) => /refresh|sweep/i.test(String(l.msg)))).toEqual([]);

    // What the provider issued (the old refresh token died with it) is what Redis holds.
    const issued = t.fake.issued[t.fake.issued.length - 1]!;
    expect(t.fake.liveRefreshTokens.has(`rt-${refreshed}`)).toBe(false);
    expect(t.fake.liveRefreshTokens.has(issued.refresh_token!)).toBe(true);

    reader = await startTestBroker({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: PREFIX,
      ...providerEnv('bonjoro', t.fake.url),
    });
    const meta = await reader.api(`/internal/connections/bonjoro/${refreshed}`);
    expect(meta.status).toBe(200);
    expect(meta.body.status).toBe('active');
    expect(meta.body.last_refreshed_at).not.toBeNull();
    expect(meta.body.refresh_failures).toBe(0);
    const token = await reader.api(`/internal/connections/bonjoro/${refreshed}/token`);
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(issued.access_token);

    // The stored refresh token is the rotated one: a forced refresh presents it and succeeds.
    t.fake.onToken(undefined);
    const forced = await reader.api(`/internal/connections/bonjoro/${refreshed}/token?force_refresh=true`);
    expect(forced.status).toBe(200);
    expect(t.fake.refreshRequests[t.fake.refreshRequests.length - 1]!.params.refresh_token).toBe(
      issued.refresh_token,
    );

    // The connection left waiting is untouched, still due for whichever process sweeps next.
    const untouched = await reader.api(`/internal/connections/bonjoro/${waiting}`);
    expect(untouched.body.last_refreshed_at).toBeNull();
    expect(await scheduledAt(t.redis.client(), PREFIX, `bonjoro:${waiting}`)).not.toBeNull();
  }, 60_000);
});
