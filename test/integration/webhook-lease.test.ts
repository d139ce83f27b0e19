import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { providerEnv } from '../helpers/broker-harness';
import { BrokerProcess } from '../helpers/broker-process';
import { until } from '../helpers/until';
import { ConcurrencyRecordingReceiver } from '../helpers/webhook-receiver';
import { useRedisAndFake } from '../helpers/redis-fixture';

const SECRET = 'webhook-lease-secret-0123456789abcdef';

/**
 * Two broker processes share one webhook queue in one Redis, and the receiver is slow. A lease
 * must cover the send it protects: no event may be sent by both processes at the same time,
 * however many events are queued, however slow the receiver, whatever each process's clock says.
 */
describe('webhook leases: two processes, a slow receiver', () => {
  const t = useRedisAndFake({}, { build: true });
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ob-skew-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Starts two processes on one queue (the second with its clock `skewMs` ahead), lets `queue`
   * put the events in, waits until every one reached the receiver and the queue is empty.
   */
  async function scenario(
    prefix: string,
    options: {
      skewMs: number;
      delayMs: number;
      queue: (a: BrokerProcess) => Promise<string[]>;
      seedFirst?: boolean;
    },
  ) {
    const receiver = await ConcurrencyRecordingReceiver.start(options.delayMs);
    const env = {
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: prefix,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      PROVIDER_TIMEOUT: '5',
      ...providerEnv('bonjoro', t.fake.url),
    };
    // The second process's clock runs ahead, as an unsynchronised host's does.
    const skew = join(dir, `skew-${prefix.replace(/\W/g, '')}.js`);
    writeFileSync(skew, `const real = Date.now; Date.now = () => real() + ${options.skewMs};\n`);
    const client = t.redis.client();
    const processes: BrokerProcess[] = [];
    try {
      processes.push(await BrokerProcess.start(env));
      const ids = await options.queue(processes[0]!);
      processes.push(await BrokerProcess.start({ ...env, NODE_OPTIONS: `--require ${skew}` }));
      await until(
        () => (ids.every((id) => receiver.deliveredIds().has(id)) ? true : undefined),
        ids.length * options.delayMs + 30_000,
      );
      await until(async () => ((await client.zcard(`${prefix}{webhooks}:queue`)) === 0 ? true : undefined));
      // A little longer: a second copy still on its way would show up now.
      await new Promise((r) => setTimeout(r, options.delayMs + 500));
      return receiver;
    } finally {
      client.disconnect();
      await Promise.all(processes.map((p) => p.stop()));
      await receiver.close();
    }
  }

  it('sends each event once, never from both processes at once, with one clock 45 s ahead', async () => {
    const seen: string[] = [];
    const receiver = await scenario('whl1:', {
      skewMs: 45_000,
      delayMs: 1000,
      // Each first import queues one connection.created.
      queue: async (a) => {
        const names = Array.from({ length: 8 }, (_, i) => `hook-${i}`);
        const imports = await Promise.all(
          names.map((id) =>
            a.api(`/internal/connections/bonjoro/${id}`, {
              method: 'PUT',
              body: { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600 },
            }),
          ),
        );
        expect(imports.map((r) => r.status)).toEqual(names.map(() => 201));
        // The ids the broker gave the events, read from the queue it wrote.
        const client = t.redis.client();
        try {
          seen.push(...(await client.hkeys('whl1:{webhooks}:payloads')));
        } finally {
          client.disconnect();
        }
        return seen;
      },
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(receiver.overlapping()).toEqual([]);
    expect([...receiver.deliveredIds()].sort()).toEqual(expect.arrayContaining(seen));
    // Nothing failed and every answer came within PROVIDER_TIMEOUT: one attempt per event.
    expect([...receiver.attempts].filter(([, n]) => n !== 1)).toEqual([]);
  }, 90_000);

  it('sends each event once when sending the backlog takes longer than any fixed lease on a batch', async () => {
    // 24 events queued before the second process starts (as a backlog after a receiver outage
    // would be): a batch of 20 × 1.7 s is 34 s of sending one after another, longer than a 30 s
    // lease on the batch.
    const receiver = await scenario('whl2:', {
      skewMs: 0,
      delayMs: 1700,
      queue: async () => {
        const client = t.redis.client();
        try {
          const ids = Array.from(
            { length: 24 },
            (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          );
          const now = Date.now();
          for (const [i, id] of ids.entries()) {
            // The queue's stored shape (payload hash + schedule in ms), as a running broker wrote it.
            const event = {
              id,
              type: 'connection.created',
              provider: 'bonjoro',
              connection_id: `backlog-${i}`,
              occurred_at: new Date(now).toISOString(),
              attempts: 0,
            };
            await client.hset('whl2:{webhooks}:payloads', id, JSON.stringify(event));
            await client.zadd('whl2:{webhooks}:queue', now - 1000, id);
          }
          return ids;
        } finally {
          client.disconnect();
        }
      },
    });
    expect(receiver.overlapping()).toEqual([]);
    expect(receiver.deliveredIds().size).toBe(24);
    expect([...receiver.attempts].filter(([, n]) => n !== 1)).toEqual([]);
  }, 120_000);
});
