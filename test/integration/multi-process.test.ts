import { providerEnv } from '../helpers/broker-harness';
import { BrokerProcess, connectAcross, ensureBuilt } from '../helpers/broker-process';
import { FakeProvider, defaultTokenHandler } from '../helpers/fake-provider';
import { freePort } from '../helpers/free-port';
import { recordFigures } from '../helpers/load-run';
import { TestRedis } from '../helpers/redis-server';
import { untilTrue as until } from '../helpers/until';

/** Polls until `check` holds (short intervals; gives up after `timeoutMs`). */
describe('several broker processes on one Redis', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let brokers: BrokerProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    await ensureBuilt();
    redis = await TestRedis.start();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    env = {
      REDIS_URL: redis.url,
      ...providerEnv('jobber', fake.url),
      // A short provider timeout keeps the refresh lock's life (two calls + 5 s) short; 1 s made the
      // 300-caller stampede time out its 300 ms refresh on a loaded machine (every caller a 502).
      PROVIDER_TIMEOUT: '2',
    };
    // Behind one load balancer the processes share PUBLIC_URL; the test reaches each directly.
    const publicPort = await freePort();
    env.PUBLIC_URL = `http://127.0.0.1:${publicPort}`;
    brokers = await Promise.all(
      [0, 1, 2].map((i) => BrokerProcess.start(env, i === 0 ? { publicPort } : {})),
    );
  }, 90_000);

  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop('SIGKILL')));
    await fake?.close();
    await redis?.close();
  });

  /** A connection whose token is stale (an import living 5 s, under REFRESH_MARGIN) with a live refresh token. */
  async function staleConnection(id: string): Promise<void> {
    const minted = fake.mint();
    const put = await brokers[0]!.api(`/internal/connections/jobber/${id}`, {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 5 },
    });
    expect(put.status).toBe(201);
  }

  it('finishes a flow on another process than the one that started it (two and three processes)', async () => {
    const [a, b, c] = brokers as [BrokerProcess, BrokerProcess, BrokerProcess];
    const two = await connectAcross(
      'jobber',
      'acct-two',
      { link: a, auth: a, callback: b },
      { returnTo: 'https://app.example.com/integrations' },
    );
    expect(two.status).toBe(303);
    expect(new URL(two.location!).searchParams.get('connected')).toBe('jobber');
    const three = await connectAcross('jobber', 'acct-three', { link: c, auth: b, callback: a });
    expect(three.status).toBe(200);
    for (const broker of brokers) {
      const token = await broker.api('/internal/connections/jobber/acct-three/token');
      expect(token.status).toBe(200);
    }
  });

  it.each([
    [30, 3],
    [300, 2],
  ])(
    'sends one refresh to the provider for %i callers spread over %i processes, and all get the same token',
    async (callers, processes) => {
      const id = `acct-stampede-${callers}`;
      await staleConnection(id);
      const before = fake.refreshRequests.length;
      fake.options.tokenDelayMs = 300;
      try {
        const answers = await Promise.all(
          Array.from({ length: callers }, (_, i) =>
            brokers[i % processes]!.api(`/internal/connections/jobber/${id}/token`),
          ),
        );
        expect(answers.map((a) => a.status)).toEqual(Array(callers).fill(200));
        expect(fake.refreshRequests.length - before).toBe(1);
        expect(new Set(answers.map((a) => a.body.access_token))).toEqual(
          new Set([fake.issued[fake.issued.length - 1]!.access_token]),
        );
      } finally {
        fake.options.tokenDelayMs = 0;
      }
    },
  );

  it('lets another process refresh when the lock holder is SIGKILLed mid-refresh: callers see a delay, not an error', async () => {
    const [a, b, c] = brokers as [BrokerProcess, BrokerProcess, BrokerProcess];
    await staleConnection('acct-killed');
    const before = fake.refreshRequests.length;
    // The first refresh reaches the provider while A holds the lock; A dies there, unanswered.
    let first = true;
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type === 'refresh_token' && first) {
        first = false;
        await a.kill();
        res.destroy();
        return;
      }
      return defaultTokenHandler(req, res, provider);
    });
    try {
      const onA = a.api('/internal/connections/jobber/acct-killed/token').catch(() => 'killed' as const);
      await until(() => fake.refreshRequests.length > before);
      const started = Date.now();
      const waiting = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? b : c).api('/internal/connections/jobber/acct-killed/token', { timeoutMs: 30_000 }),
        ),
      );
      const waited = Date.now() - started;
      expect(await onA).toBe('killed');
      expect(a.exitSignal).toBe('SIGKILL');
      expect(waiting.map((w) => w.status)).toEqual(Array(6).fill(200));
      // One more refresh, by a surviving process, after the dead holder's lock expired.
      expect(fake.refreshRequests.length - before).toBe(2);
      expect(new Set(waiting.map((w) => w.body.access_token))).toEqual(
        new Set([fake.issued[fake.issued.length - 1]!.access_token]),
      );
      recordFigures('multi-process-killed-lock-holder', { callers_waited_ms: waited });
    } finally {
      fake.onToken(undefined);
      // Bring the third process back for the tests that follow.
      brokers[0] = await BrokerProcess.start(env);
    }
  });

  it('on SIGTERM stops accepting, finishes the request in flight, and exits 0', async () => {
    const victim = await BrokerProcess.start({ ...env, SHUTDOWN_TIMEOUT: '10', LOG_LEVEL: 'info' });
    await staleConnection('acct-sigterm');
    fake.options.tokenDelayMs = 600;
    try {
      const before = fake.refreshRequests.length;
      const inFlight = victim.api('/internal/connections/jobber/acct-sigterm/token');
      await until(() => fake.refreshRequests.length > before);
      victim.child.kill('SIGTERM');
      // New connections are refused while the old request finishes.
      await until(() => victim.stdout.includes('shutting down'), 5000);
      await new Promise((r) => setTimeout(r, 100));
      const refused = await fetch(`${victim.publicUrl}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        () => false,
        () => true,
      );
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
      await victim.waitForExit();
      expect(victim.exitCode).toBe(0);
      expect(refused).toBe(true);
      // The refreshed token was stored before the process left.
      const stored = await brokers[1]!.api('/internal/connections/jobber/acct-sigterm/token');
      expect(stored.body.access_token).toBe(answer.body.access_token);
    } finally {
      fake.options.tokenDelayMs = 0;
      await victim.stop('SIGKILL');
    }
  });
});
