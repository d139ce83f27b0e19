import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeProvider, RecordedRequest, defaultTokenHandler } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';

/**
 * SWEEP_CONCURRENCY and SWEEP_CONCURRENCY_PER_PROVIDER bound the background refreshes one
 * process runs at once. Many connections fall due together (KEEPALIVE_AFTER=1, a second after
 * their import); the fake token endpoint answers slowly and counts the refreshes it has in flight,
 * per provider (by client id) and in all.
 */
const TOKEN_DELAY_MS = 200;
const CONNECTIONS = 12;

/** The client id of a token request, from the form or from Basic authentication. */
function clientIdOf(req: RecordedRequest): string {
  if (req.params.client_id) return req.params.client_id;
  const basic = String(req.headers.authorization ?? '').replace(/^Basic /i, '');
  return decodeURIComponent(Buffer.from(basic, 'base64').toString('utf8').split(':')[0] ?? '');
}

describe('sweep concurrency: background refreshes at once, in all and per provider', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let dir: string;
  let providersFile: string;
  const brokers: TestBroker[] = [];
  let n = 0;

  /** Refreshes in flight at the fake right now, and the most seen at once since `reset()`. */
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  let total = 0;
  let peakTotal = 0;
  const reset = () => {
    inFlight.clear();
    peak.clear();
    total = 0;
    peakTotal = 0;
  };

  async function start(prefix: string, env: Record<string, string>): Promise<TestBroker> {
    const broker = await startTestBroker({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${prefix}:`,
      KEEPALIVE_AFTER: '1',
      PROVIDERS_FILE: providersFile,
      ...providerEnv('bonjoro', fake.url),
      ...providerEnv('bonjoro-eu', fake.url),
      ...env,
    });
    brokers.push(broker);
    return broker;
  }

  /** Imports `count` connections of `provider`; a second later all of them are due for keep-alive. */
  async function importConnections(broker: TestBroker, provider: string, count: number): Promise<void> {
    await Promise.all(
      Array.from({ length: count }, async () => {
        n += 1;
        const rt = `rt-sweep-${n}`;
        fake.liveRefreshTokens.add(rt);
        const res = await broker.api(`/internal/connections/${provider}/busy-${n}`, {
          method: 'PUT',
          body: { access_token: `at-sweep-${n}`, refresh_token: rt, expires_in: 3600 },
        });
        expect(res.status).toBe(201);
      }),
    );
  }

  async function sweepWhenDue(broker: TestBroker, due: number): Promise<number> {
    await until(async () => ((await broker.broker.connections.countDue()) >= due ? true : undefined));
    const before = fake.refreshRequests.length;
    const worked = await broker.broker.sweeper.sweepOnce();
    expect(worked).toBe(due);
    expect(fake.refreshRequests.length - before).toBe(due);
    expect(total).toBe(0);
    return worked;
  }

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start();
    fake.onToken(async (req, res, provider) => {
      if (req.params.grant_type !== 'refresh_token') return defaultTokenHandler(req, res, provider);
      const client = clientIdOf(req);
      inFlight.set(client, (inFlight.get(client) ?? 0) + 1);
      peak.set(client, Math.max(peak.get(client) ?? 0, inFlight.get(client)!));
      total += 1;
      peakTotal = Math.max(peakTotal, total);
      await new Promise((r) => setTimeout(r, TOKEN_DELAY_MS));
      inFlight.set(client, inFlight.get(client)! - 1);
      total -= 1;
      defaultTokenHandler(req, res, provider);
    });
    dir = mkdtempSync(join(tmpdir(), 'ob-sweep-concurrency-'));
    providersFile = join(dir, 'providers.json');
    // A second provider (another OAuth app of the same one), so the total bound can be seen apart.
    writeFileSync(providersFile, JSON.stringify({ providers: [{ id: 'bonjoro-eu', extends: 'bonjoro' }] }));
  });

  beforeEach(reset);

  afterAll(async () => {
    for (const broker of brokers) await broker.close();
    await fake?.close();
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('with SWEEP_CONCURRENCY_PER_PROVIDER=2 a provider never has more than 2 refreshes in flight', async () => {
    const broker = await start('pp2', { SWEEP_CONCURRENCY_PER_PROVIDER: '2' });
    expect(broker.broker.config.sweepConcurrencyPerProvider).toBe(2);
    await importConnections(broker, 'bonjoro', CONNECTIONS);
    await sweepWhenDue(broker, CONNECTIONS);
    expect(peak.get('bonjoro-client')).toBe(2);
    expect(peakTotal).toBe(2);
  });

  it('with SWEEP_CONCURRENCY_PER_PROVIDER=4 the same work reaches the provider 4 at once', async () => {
    const broker = await start('pp4', { SWEEP_CONCURRENCY_PER_PROVIDER: '4' });
    await importConnections(broker, 'bonjoro', CONNECTIONS);
    await sweepWhenDue(broker, CONNECTIONS);
    expect(peak.get('bonjoro-client')).toBeGreaterThan(2);
    expect(peak.get('bonjoro-client')).toBeLessThanOrEqual(4);
  });

  it('SWEEP_CONCURRENCY bounds the refreshes of all providers together', async () => {
    const broker = await start('total3', { SWEEP_CONCURRENCY: '3', SWEEP_CONCURRENCY_PER_PROVIDER: '2' });
    await importConnections(broker, 'bonjoro', CONNECTIONS / 2);
    await importConnections(broker, 'bonjoro-eu', CONNECTIONS / 2);
    await sweepWhenDue(broker, CONNECTIONS);
    // Both providers were worked on side by side, 3 at once in all and never 4 (2 + 2).
    expect(peakTotal).toBe(3);
    expect(peak.get('bonjoro-client')).toBeLessThanOrEqual(2);
    expect(peak.get('bonjoro-eu-client')).toBeLessThanOrEqual(2);
  });
});
