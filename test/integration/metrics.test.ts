import { TestBrowser } from '../helpers/browser';
import { callbackUrl, startFlow } from '../helpers/flow-steps';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY, TestBroker, baseEnv, providerEnv } from '../helpers/broker-harness';

/**
 * The Prometheus series on the internal listener's GET /metrics move with what the broker does:
 * connects, refreshes, cross-process lock waits, Redis errors, requests. Every check is a delta
 * between two scrapes. Two broker instances share one Redis, as two processes would.
 */
type Samples = Map<string, number>;

function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return `${name}{${pairs.sort().join(',')}}`;
}

/** Prometheus text format: `name{label="value",…} number` per sample line; comments skipped. */
function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparsed metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.set(seriesKey(m[1]!, labels), Number(m[3]));
  }
  return samples;
}

interface Scrape {
  text: string;
  get(name: string, labels?: Record<string, string>): number;
}

async function scrape(broker: TestBroker): Promise<Scrape> {
  const res = await fetch(`${broker.internalUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  const text = await res.text();
  const samples = parseMetrics(text);
  return { text, get: (name, labels) => samples.get(seriesKey(name, labels)) ?? 0 };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN_ROUTE = '/internal/connections/:provider/:connection_id/token';
const CONNECTS = 'oauth_broker_connect_attempts_total';
const REFRESHES = 'oauth_broker_refreshes_total';
const REFRESH_COUNT = 'oauth_broker_refresh_duration_seconds_count';
const LOCK_WAITS = 'oauth_broker_lock_waits_total';
const LOCK_WAIT_COUNT = 'oauth_broker_lock_wait_duration_seconds_count';
const success = { provider: 'bonjoro', outcome: 'success', trigger: 'caller' };

describe('Prometheus metrics on the internal listener', () => {
  const env = {
    PROVIDER_TIMEOUT: '5',
    // No background refreshes to blur the per-provider deltas.
    REFRESH_AHEAD: 'false',
    KEEPALIVE_AFTER: '0',
  };
  const t = useBrokerOnRedis(
    (fakeUrl) => ({ ...env, ...providerEnv('bonjoro', fakeUrl) }),
    {},
    { second: (fakeUrl) => ({ ...env, ...providerEnv('bonjoro', fakeUrl) }), jobber: false },
  );
  /** Every connection id and secret a test used: none may appear in /metrics. */
  const secrets = new Set<string>([TEST_INTERNAL_KEY, 'bonjoro-secret', baseEnv(0).SESSION_SECRET!]);
  let seq = 0;

  /** A connection whose refresh token the fake accepts, with this much life left. */
  async function importConnection(expiresIn: number): Promise<string> {
    seq += 1;
    const id = `cust-${seq}-q7x${Math.random().toString(36).slice(2, 8)}`;
    const refresh = `live-refresh-${id}`;
    const access = `imported-access-${id}`;
    t.fake.liveRefreshTokens.add(refresh);
    secrets.add(id).add(refresh).add(access);
    const put = await t.broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: access, refresh_token: refresh, expires_in: expiresIn },
    });
    expect(put.status).toBe(201);
    return id;
  }

  const token = (on: TestBroker, id: string, query = '') =>
    on.api(`/internal/connections/bonjoro/${id}/token${query}`);

  it('counts a completed connect as connected, and a forged state as unknown_flow', async () => {
    const id = `acct-conn-${Math.random().toString(36).slice(2, 10)}`;
    secrets.add(id);
    const before = await scrape(t.broker);
    const result = await t.broker.connect('bonjoro', id);
    expect(result.callback.status).toBe(200);
    secrets.add(result.authorizeUrl.searchParams.get('state')!);
    const afterConnect = await scrape(t.broker);
    expect(afterConnect.get(CONNECTS, { provider: 'bonjoro', outcome: 'started' })).toBe(
      before.get(CONNECTS, { provider: 'bonjoro', outcome: 'started' }) + 1,
    );
    expect(afterConnect.get(CONNECTS, { provider: 'bonjoro', outcome: 'connected' })).toBe(
      before.get(CONNECTS, { provider: 'bonjoro', outcome: 'connected' }) + 1,
    );

    // A flow under way, answered with a state this browser never got.
    const browser = new TestBrowser();
    const flow = await startFlow(t.broker, browser, 'bonjoro', `${id}-2`);
    secrets.add(flow.state);
    const forged = await browser.get(
      callbackUrl(t.broker, 'bonjoro', { code: 'code-forged', state: `forged-${flow.state.slice(0, 10)}` }),
    );
    expect(forged.status).toBe(400);
    const afterForged = await scrape(t.broker);
    expect(afterForged.get(CONNECTS, { provider: 'bonjoro', outcome: 'unknown_flow' })).toBe(
      afterConnect.get(CONNECTS, { provider: 'bonjoro', outcome: 'unknown_flow' }) + 1,
    );
    expect(afterForged.get(CONNECTS, { provider: 'bonjoro', outcome: 'connected' })).toBe(
      afterConnect.get(CONNECTS, { provider: 'bonjoro', outcome: 'connected' }),
    );
  });

  it('counts refreshes through the token API by provider, outcome and trigger, with a duration sample each', async () => {
    const stale = await importConnection(100);
    const fresh = await importConnection(3600);
    const before = await scrape(t.broker);
    const refreshesBefore = t.fake.refreshRequests.length;
    expect((await token(t.broker, stale)).status).toBe(200); // stale: inside REFRESH_MARGIN
    expect((await token(t.broker, fresh)).status).toBe(200); // fresh: served as stored, no refresh
    expect((await token(t.broker, fresh, '?force_refresh=true')).status).toBe(200);
    expect((await token(t.broker, stale, '?min_validity=3700')).status).toBe(200);
    expect(t.fake.refreshRequests.length).toBe(refreshesBefore + 3);
    const after = await scrape(t.broker);
    expect(after.get(REFRESHES, success)).toBe(before.get(REFRESHES, success) + 3);
    expect(after.get(REFRESH_COUNT, { provider: 'bonjoro' })).toBe(
      before.get(REFRESH_COUNT, { provider: 'bonjoro' }) + 3,
    );

    const refused = { provider: 'bonjoro', outcome: 'invalid_grant', trigger: 'caller' };
    t.fake.failNext(1, 400, { error: 'invalid_grant' });
    expect((await token(t.broker, fresh, '?force_refresh=true')).status).toBe(409);
    const failed = await scrape(t.broker);
    expect(failed.get(REFRESHES, refused)).toBe(after.get(REFRESHES, refused) + 1);
    expect(failed.get(REFRESHES, success)).toBe(after.get(REFRESHES, success));
  });

  it('records no lock wait for callers in one process (single flight), and one per waiting process', async () => {
    t.fake.options.tokenDelayMs = 400;
    try {
      // One process: callers share one refresh promise and never touch the lock as waiters.
      const local = await importConnection(100);
      const before = await scrape(t.broker);
      const requests = t.fake.refreshRequests.length;
      const local4 = await Promise.all([1, 2, 3, 4].map(() => token(t.broker, local)));
      expect(local4.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(t.fake.refreshRequests.length).toBe(requests + 1);
      const after = await scrape(t.broker);
      for (const outcome of ['served', 'retried'])
        expect(after.get(LOCK_WAITS, { outcome })).toBe(before.get(LOCK_WAITS, { outcome }));
      expect(after.get(LOCK_WAIT_COUNT)).toBe(before.get(LOCK_WAIT_COUNT));
      expect(after.get(REFRESHES, success)).toBe(before.get(REFRESHES, success) + 1);

      // Two processes: one holds the Redis lock and refreshes, the other waits for it, once.
      const shared = await importConnection(100);
      const [a0, b0] = [await scrape(t.broker), await scrape(t.second)];
      const both = await Promise.all(
        [t.broker, t.second, t.broker, t.second, t.broker, t.second].map((on) => token(on, shared)),
      );
      expect(both.every((r) => r.status === 200)).toBe(true);
      expect(new Set(both.map((r) => r.body.access_token)).size).toBe(1);
      expect(t.fake.refreshRequests.length).toBe(requests + 2);
      const [a1, b1] = [await scrape(t.broker), await scrape(t.second)];
      const delta = (name: string, labels?: Record<string, string>) =>
        a1.get(name, labels) - a0.get(name, labels) + (b1.get(name, labels) - b0.get(name, labels));
      expect(delta(LOCK_WAITS, { outcome: 'served' })).toBe(1);
      expect(delta(LOCK_WAITS, { outcome: 'retried' })).toBe(0);
      expect(delta(LOCK_WAIT_COUNT)).toBe(1);
      expect(delta(REFRESHES, success)).toBe(1);
      expect(delta(REFRESH_COUNT, { provider: 'bonjoro' })).toBe(1);
      // The waiter is the process that did not refresh.
      const waiter = a1.get(REFRESHES, success) > a0.get(REFRESHES, success) ? [b0, b1] : [a0, a1];
      expect(waiter[1]!.get(LOCK_WAIT_COUNT) - waiter[0]!.get(LOCK_WAIT_COUNT)).toBe(1);
    } finally {
      t.fake.options.tokenDelayMs = undefined;
    }
  });

  it('counts token API requests by route pattern, exactly, and puts no id, token or secret in any label', async () => {
    const id = await importConnection(3600);
    const ok = { listener: 'internal', route: TOKEN_ROUTE, method: 'GET', status: '200' };
    const missing = { ...ok, status: '404' };
    const name = 'oauth_broker_http_requests_total';
    const [a0, b0] = [await scrape(t.broker), await scrape(t.second)];
    for (let i = 0; i < 5; i++) {
      const res = await token(t.broker, id);
      expect(res.status).toBe(200);
      secrets.add(res.body.access_token);
    }
    expect((await token(t.broker, `${id}-absent`)).status).toBe(404);
    secrets.add(`${id}-absent`);
    const [a1, b1] = [await scrape(t.broker), await scrape(t.second)];
    expect(a1.get(name, ok)).toBe(a0.get(name, ok) + 5);
    expect(a1.get(name, missing)).toBe(a0.get(name, missing) + 1);
    expect(b1.get(name, ok)).toBe(b0.get(name, ok));
    // The latency histogram has no status label: six samples for the six calls.
    const timed = { listener: 'internal', route: TOKEN_ROUTE, method: 'GET' };
    const count = 'oauth_broker_http_request_duration_seconds_count';
    expect(a1.get(count, timed)).toBe(a0.get(count, timed) + 6);

    for (const issued of t.fake.issued) secrets.add(issued.access_token).add(issued.refresh_token!);
    expect(secrets.size).toBeGreaterThan(10);
    expect(a1.text).toContain(`route="${TOKEN_ROUTE}"`);
    for (const text of [a1.text, b1.text]) for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('echoes a sane X-Request-Id and replaces an insane one with a fresh UUID, on both listeners', async () => {
    const ask = async (url: string, id: string) =>
      (await fetch(url, { headers: { 'x-request-id': id } })).headers.get('x-request-id');
    for (const url of [`${t.broker.internalUrl}/readyz`, `${t.broker.publicUrl}/healthz`]) {
      expect(await ask(url, 'req-abc.123')).toBe('req-abc.123');
      expect(await ask(url, 'r'.repeat(128))).toBe('r'.repeat(128));
      for (const insane of ['req abc', 'r'.repeat(129), 'req<script>', 'req/1']) {
        const answered = await ask(url, insane);
        expect(answered).not.toBe(insane);
        expect(answered).toMatch(UUID);
      }
      const [x, y] = [await ask(url, 'bad id'), await ask(url, 'bad id')];
      expect(x).not.toBe(y);
    }
  });

  // Last: a SIGKILLed Redis comes back empty.
  it('counts Redis errors while Redis is away: /readyz 503, a token request 503 and a connect page 503', async () => {
    const errors = 'oauth_broker_redis_errors_total';
    const readyz503 = { listener: 'internal', route: '/readyz', method: 'GET', status: '503' };
    const before = await scrape(t.broker);
    await t.redis.stop();
    try {
      const ready = await fetch(`${t.broker.internalUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      expect(ready.status).toBe(503);
      const down = await scrape(t.broker);
      expect(down.get(errors)).toBe(before.get(errors) + 1);
      expect(down.get('oauth_broker_http_requests_total', readyz503)).toBe(
        before.get('oauth_broker_http_requests_total', readyz503) + 1,
      );
      expect((await token(t.broker, 'any-connection')).status).toBe(503);
      expect((await scrape(t.broker)).get(errors)).toBe(before.get(errors) + 2);
      // The browser's listener counts them too (its answer is a page, not problem+json).
      const page = await fetch(`${t.broker.publicUrl}/auth/bonjoro?session=${'s'.repeat(43)}`, {
        redirect: 'manual',
        signal: AbortSignal.timeout(10_000),
      });
      expect(page.status).toBe(503);
      expect((await scrape(t.broker)).get(errors)).toBe(before.get(errors) + 3);
    } finally {
      await t.redis.startProcess();
    }
    const deadline = Date.now() + 5000;
    while ((await fetch(`${t.broker.internalUrl}/readyz`)).status !== 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${t.broker.internalUrl}/readyz`)).status).toBe(200);
  });
});
