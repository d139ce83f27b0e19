import { TEST_RETURN_ORIGIN, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { failureWindow, recordFigures, runLoad } from '../helpers/load-run';
import { SENTINEL_MASTER_NAME, TestRedisSentinel } from '../helpers/redis-sentinel';

// The contract: service resumes within 3 s of Sentinel naming a new master.
const RESUME_MS = 3000;
const CONNECTIONS = Array.from({ length: 6 }, (_, i) => `acct-${i}`);

describe('Redis Sentinel (one master, one replica, one sentinel)', () => {
  let sentinel: TestRedisSentinel;
  let fake: FakeProvider;
  let broker: TestBroker;

  beforeAll(async () => {
    sentinel = await TestRedisSentinel.start();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    broker = await startTestBroker({
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_SENTINELS: sentinel.sentinelsEnv,
      REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
      ...providerEnv('jobber', fake.url),
    });
    // main.ts logs these; during a failover ioredis reports each failed attempt to find the master.
    broker.broker.redis.on('error', () => undefined);
  }, 60_000);

  afterAll(async () => {
    await broker?.close();
    await fake?.close();
    await sentinel?.close();
  });

  /** The access token each connection answers now. */
  async function tokens(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const id of CONNECTIONS) {
      const res = await broker.api(`/internal/connections/jobber/${id}/token`);
      expect(res.status).toBe(200);
      out[id] = res.body.access_token;
    }
    return out;
  }

  it('connects through the master the sentinel names, and serves tokens', async () => {
    const result = await broker.connect('jobber', 'acct-flow', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
    });
    expect(result.callback.status).toBe(303);
    const token = await broker.api('/internal/connections/jobber/acct-flow/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
    const master = await sentinel.masterClient();
    try {
      expect(await master.exists('ob:{jobber:acct-flow}:conn')).toBe(1);
    } finally {
      master.disconnect();
    }
    expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);

    for (const id of CONNECTIONS) await broker.connect('jobber', id);
  });

  it('imports, lists with paging and deletes through the master the sentinel names', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `list-${i}`);
    for (const id of ids) {
      const put = await broker.api(`/internal/connections/jobber/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600 },
      });
      expect(put.status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `provider=jobber&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await broker.api(`/internal/connections?${query}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.connections.map((c: { connection_id: string }) => c.connection_id));
      cursor = page.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(seen.filter((id) => id.startsWith('list-'))).toEqual(ids);
    expect(seen).toEqual(expect.arrayContaining([...CONNECTIONS, 'acct-flow']));
    expect(pages).toBeGreaterThanOrEqual(4);
    for (const id of ids) {
      expect((await broker.api(`/internal/connections/jobber/${id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect((await broker.api('/internal/connections/jobber/list-0')).status).toBe(404);
  });

  it('sends one refresh to the provider for a stampede over two brokers on the sentinel, one token for all', async () => {
    const second = await startTestBroker({
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_SENTINELS: sentinel.sentinelsEnv,
      REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
      ...providerEnv('jobber', fake.url),
    });
    try {
      const live = fake.mint();
      const put = await broker.api('/internal/connections/jobber/acct-stampede', {
        method: 'PUT',
        body: { access_token: live.access_token, refresh_token: live.refresh_token, expires_in: 5 },
      });
      expect(put.status).toBe(201);
      const before = fake.refreshRequests.length;
      fake.options.tokenDelayMs = 300;
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            (i % 2 === 0 ? broker : second).api('/internal/connections/jobber/acct-stampede/token'),
          ),
        );
        expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
        expect(fake.refreshRequests.length - before).toBe(1);
        const fresh = fake.issued[fake.issued.length - 1]!.access_token;
        expect(new Set(answers.map((r) => r.body.access_token))).toEqual(new Set([fresh]));
      } finally {
        fake.options.tokenDelayMs = 0;
      }
    } finally {
      await second.close();
    }
  });

  it('answers 503 store_unavailable at most while a forced failover runs, then serves again within 3 s, nothing lost', async () => {
    const before = await tokens();
    await sentinel.waitForReplicaInSync();
    const oldMaster = await sentinel.masterPort();

    const load = runLoad(4, (i) =>
      broker.api(`/internal/connections/jobber/${CONNECTIONS[i % CONNECTIONS.length]}/token`, {
        headers: {},
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const failoverStarted = Date.now();
    const promoted = await sentinel.failover();
    // Keep fetching past the promise of the contract.
    await new Promise((r) => setTimeout(r, RESUME_MS + 1500));
    const samples = await load.stop();

    expect(promoted.port).not.toBe(oldMaster);
    const failures = samples.filter((s) => s.status !== 200);
    // Whatever failed, failed as the store being away: never a 500, never a hang.
    for (const f of failures) {
      expect(f.status).toBe(503);
      expect(f.code).toBe('store_unavailable');
      expect(f.start).toBeGreaterThanOrEqual(failoverStarted - 100);
    }
    // From 3 s after the sentinel named the new master, every request succeeds.
    const late = samples.filter((s) => s.start >= promoted.at + RESUME_MS);
    expect(late.length).toBeGreaterThan(10);
    expect(late.every((s) => s.status === 200)).toBe(true);

    // Nothing lost: every connection answers the token it had, and writes go to the new master.
    expect(await tokens()).toEqual(before);
    const forced = await broker.api(
      `/internal/connections/jobber/${CONNECTIONS[0]}/token?force_refresh=true`,
    );
    expect(forced.status).toBe(200);
    const master = await sentinel.masterClient();
    try {
      expect(master.options.port).toBe(promoted.port);
      expect(await master.exists(`ob:{jobber:${CONNECTIONS[0]}}:conn`)).toBe(1);
    } finally {
      master.disconnect();
    }

    const window = failureWindow(samples);
    const lastFailureEnd = window.count ? window.last : failoverStarted;
    recordFigures('sentinel-forced-failover', {
      requests: samples.length,
      failures: window.count,
      failure_window_ms: window.ms,
      failover_ms: promoted.at - failoverStarted,
      resumed_after_new_master_ms: Math.max(0, lastFailureEnd - promoted.at),
    });
  });

  it('rides out a crashed master: fast 503s while the sentinel decides, then the promoted replica serves everything', async () => {
    const before = await tokens();
    await sentinel.waitForReplicaInSync();

    const load = runLoad(4, (i) =>
      broker.api(`/internal/connections/jobber/${CONNECTIONS[i % CONNECTIONS.length]}/token`),
    );
    await new Promise((r) => setTimeout(r, 300));
    const crashed = Date.now();
    const oldMaster = await sentinel.killMaster();
    const promoted = await sentinel.waitForNewMaster(oldMaster);
    await new Promise((r) => setTimeout(r, RESUME_MS + 1500));
    const samples = await load.stop();

    const failures = samples.filter((s) => s.status !== 200);
    expect(failures.length).toBeGreaterThan(0); // the master was really gone for a while
    for (const f of failures) {
      expect(f.status).toBe(503);
      expect(f.code).toBe('store_unavailable');
      // Fast: a request never waits for the outage to end.
      expect(f.end - f.start).toBeLessThanOrEqual(2000);
    }
    const late = samples.filter((s) => s.start >= promoted.at + RESUME_MS);
    expect(late.length).toBeGreaterThan(10);
    // Named, so a failure says when after the promotion and with what.
    expect(
      late
        .filter((s) => s.status !== 200)
        .map((s) => ({ status: s.status, code: s.code, after_promotion_ms: s.start - promoted.at })),
    ).toEqual([]);
    expect(await tokens()).toEqual(before);

    // Writes too: the promoted replica has no replica of its own (its master is dead), so nothing
    // waits for one, whatever the old master had a moment ago.
    const forced = await broker.api(
      `/internal/connections/jobber/${CONNECTIONS[1]}/token?force_refresh=true`,
    );
    expect({ status: forced.status, code: forced.body.code }).toEqual({ status: 200, code: undefined });

    // The old master comes back as a replica; the deployment is whole again.
    await sentinel.restartAsReplica(oldMaster);

    const window = failureWindow(samples);
    recordFigures('sentinel-crashed-master', {
      requests: samples.length,
      failures: window.count,
      failure_window_ms: window.ms,
      sentinel_decision_ms: promoted.at - crashed,
      resumed_after_new_master_ms: Math.max(0, window.last - promoted.at),
      slowest_failure_ms: Math.max(...failures.map((f) => f.end - f.start)),
    });
  });
});
