import { providerEnv } from '../helpers/broker-harness';
import { BrokerProcess, connectAcross, ensureBuilt } from '../helpers/broker-process';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import { recordFigures } from '../helpers/load-run';
import { TestRedis } from '../helpers/redis-server';

// The contract: while Redis is away every route answers within 2 s, and service resumes within
// 3 s of Redis answering again.
const FAST_MS = 2000;
const RESUME_MS = 3000;

interface Answer {
  status: number;
  type: string;
  body: string;
  ms: number;
}

async function timed(url: string, init: RequestInit = {}): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000), ...init });
  const body = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body, ms: Date.now() - started };
}

const AUTH = { authorization: 'Bearer test-internal-key-0123456789abcdef' };

describe('Redis outage: a real broker process on a Redis that goes away and comes back', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: BrokerProcess;

  beforeAll(async () => {
    await ensureBuilt();
    // Append-only with fsync on every write: a crash of this Redis loses nothing written.
    redis = await TestRedis.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    fake = await FakeProvider.start();
    broker = await BrokerProcess.start({
      REDIS_URL: redis.url,
      ...providerEnv('jobber', fake.url),
      BONJORO_AUTH_MODE: 'api_key',
      LOG_LEVEL: 'warn',
    });
  }, 90_000);

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    await fake?.close();
    await redis?.close();
  });

  it('answers every route fast while Redis is down (503 problem+json, 503 pages), keeps /healthz, and resumes alone with the data intact', async () => {
    // Before: a connection, a browser flow under way (state in its session), an API-key form shown.
    const connected = await connectAcross('jobber', 'acct-1', {
      link: broker,
      auth: broker,
      callback: broker,
    });
    expect(connected.status).toBe(200);
    const before = await broker.api('/internal/connections/jobber/acct-1/token');
    expect(before.status).toBe(200);

    const pending = new TestBrowser();
    const link = await broker.connectLink('jobber', 'acct-pending');
    const auth = await pending.get(link);
    expect(auth.status).toBe(302);
    const pendingState = new URL(auth.location!).searchParams.get('state')!;

    const keyBrowser = new TestBrowser();
    const form = await keyBrowser.get(await broker.connectLink('bonjoro', 'acct-key'));
    expect(form.status).toBe(200);
    const field = (name: string): string => new RegExp(`name="${name}" value="([^"]+)"`).exec(form.body)![1]!;
    const unusedLink = await broker.connectLink('jobber', 'acct-later');

    await redis.stop();
    const down = Date.now();
    const i = broker.internalUrl;
    const p = broker.publicUrl;
    const internal: Array<[string, RequestInit]> = [
      [`${i}/internal/connections/jobber/acct-1/token`, { headers: AUTH }],
      [`${i}/internal/connections/jobber/acct-1/token?force_refresh=true`, { headers: AUTH }],
      [`${i}/internal/connections/jobber/acct-1`, { headers: AUTH }],
      [`${i}/internal/connections?limit=10`, { headers: AUTH }],
      [
        `${i}/internal/connections/jobber/acct-2`,
        {
          method: 'PUT',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ access_token: 'x' }),
        },
      ],
      [`${i}/internal/connections/jobber/acct-1`, { method: 'DELETE', headers: AUTH }],
      [
        `${i}/internal/connect-sessions`,
        {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ provider: 'jobber', connection_id: 'x' }),
        },
      ],
    ];
    const answers: Array<[string, Answer]> = [];
    for (const [url, init] of internal) {
      const answer = await timed(url, init);
      answers.push([`${init.method ?? 'GET'} ${url}`, answer]);
      expect(answer.status).toBe(503);
      expect(answer.type).toContain('application/problem+json');
      expect(JSON.parse(answer.body)).toMatchObject({ status: 503, code: 'store_unavailable' });
      expect(answer.ms).toBeLessThanOrEqual(FAST_MS);
    }

    const browser: Array<[string, RequestInit]> = [
      [unusedLink, { headers: { accept: 'text/html' } }],
      [
        `${p}/callback/jobber?code=c&state=${pendingState}`,
        { headers: { accept: 'text/html', cookie: pending.cookieHeader() } },
      ],
      [
        `${p}/auth/bonjoro`,
        {
          method: 'POST',
          headers: {
            accept: 'text/html',
            cookie: keyBrowser.cookieHeader(),
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({
            flow: field('flow'),
            csrf: field('csrf'),
            api_key: 'k-123',
          }).toString(),
        },
      ],
    ];
    for (const [url, init] of browser) {
      const answer = await timed(url, init);
      answers.push([`${init.method ?? 'GET'} ${url}`, answer]);
      expect(answer.status).toBe(503);
      expect(answer.type).toContain('text/html');
      expect(answer.body).toContain('briefly unavailable');
      expect(answer.ms).toBeLessThanOrEqual(FAST_MS);
    }

    const ready = await timed(`${i}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThanOrEqual(FAST_MS);
    expect((await timed(`${p}/healthz`)).status).toBe(200);
    // What needs no Redis keeps working.
    expect((await timed(`${i}/internal/providers`, { headers: AUTH })).status).toBe(200);
    expect((await timed(`${i}/metrics`)).status).toBe(200);

    // A few seconds of steady traffic on a dead Redis: every answer fast, the process alive.
    const hammer = await Promise.all(
      Array.from({ length: 40 }, () =>
        timed(`${i}/internal/connections/jobber/acct-1/token`, { headers: AUTH }),
      ),
    );
    expect(hammer.every((a) => a.status === 503 && a.ms <= FAST_MS)).toBe(true);
    expect(broker.running).toBe(true);

    // Redis comes back on the same port: the broker notices alone.
    await redis.startProcess();
    const back = Date.now();
    let resumedAt = 0;
    while (Date.now() - back < RESUME_MS + 2000) {
      const res = await timed(`${i}/internal/connections/jobber/acct-1/token`, { headers: AUTH });
      if (res.status === 200) {
        resumedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt - back).toBeLessThanOrEqual(RESUME_MS);
    expect((await timed(`${i}/readyz`)).status).toBe(200);

    // The data is intact: the same token, the pending flow finishes, the unused link still works.
    const after = await broker.api('/internal/connections/jobber/acct-1/token');
    expect(after.body.access_token).toBe(before.body.access_token);
    const finish = await pending.get(`${p}/callback/jobber?code=c2&state=${pendingState}`);
    expect(finish.status).toBe(200);
    expect((await broker.api('/internal/connections/jobber/acct-pending')).body.status).toBe('active');
    expect((await new TestBrowser().get(unusedLink)).status).toBe(302);
    expect(broker.running).toBe(true);

    recordFigures('redis-outage', {
      slowest_answer_while_down_ms: Math.max(...answers.map(([, a]) => a.ms), ...hammer.map((a) => a.ms)),
      resumed_after_redis_answered_ms: resumedAt - back,
      outage_ms: back - down,
    });
  });

  it('starts while Redis is down: /healthz 200, /readyz 503, then serves once Redis comes up', async () => {
    const later = await TestRedis.start();
    await later.stop();
    const cold = await BrokerProcess.start({ REDIS_URL: later.url, ...providerEnv('jobber', fake.url) });
    try {
      expect((await timed(`${cold.publicUrl}/healthz`)).status).toBe(200);
      expect((await timed(`${cold.internalUrl}/readyz`)).status).toBe(503);
      const early = await timed(`${cold.internalUrl}/internal/connections?limit=1`, { headers: AUTH });
      expect(early.status).toBe(503);
      await later.startProcess();
      const up = Date.now();
      let ok = false;
      while (!ok && Date.now() - up < RESUME_MS + 2000) {
        ok = (await timed(`${cold.internalUrl}/readyz`)).status === 200;
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ok).toBe(true);
      expect(
        (await timed(`${cold.internalUrl}/internal/connections?limit=1`, { headers: AUTH })).status,
      ).toBe(200);
    } finally {
      await cold.stop('SIGKILL');
      await later.close();
    }
  });
});
