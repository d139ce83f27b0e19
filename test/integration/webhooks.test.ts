import { createHmac, timingSafeEqual } from 'node:crypto';
import { IncomingHttpHeaders, Server, createServer } from 'node:http';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';
import { untilTrue as waitFor, untilTrue as waitForAsync } from '../helpers/until';

const SECRET = 'webhook-secret-for-tests-0123456789abcdef';

interface Delivery {
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: {
    id: string;
    type: string;
    provider: string;
    connection_id: string;
    reason?: string;
    occurred_at: string;
  };
  receivedAt: number;
}

/** What a receiver must do: recompute HMAC-SHA256 over `${t}.${body}` and bound the timestamp. */
function verifySignature(
  header: string | undefined,
  rawBody: string,
  secret: string,
  toleranceSeconds = 300,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(Date.now() / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${rawBody}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

/** A webhook endpoint on loopback that records what it gets and can fail the first attempts. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  /** Every attempt, failed ones included. */
  attempts = 0;
  failNext = 0;
  private server?: Server;

  static async start(port = 0): Promise<Receiver> {
    const receiver = new Receiver();
    receiver.server = createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => {
        receiver.attempts++;
        if (receiver.failNext > 0) {
          receiver.failNext--;
          res.writeHead(500).end();
          return;
        }
        receiver.deliveries.push({
          headers: req.headers,
          rawBody: raw,
          body: JSON.parse(raw),
          receivedAt: Date.now(),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.server!.listen(port, '127.0.0.1', () => resolve()));
    return receiver;
  }

  get url(): string {
    const address = this.server!.address() as { port: number };
    return `http://127.0.0.1:${address.port}/hooks`;
  }

  of(type: string, connectionId: string): Delivery[] {
    return this.deliveries.filter((d) => d.body.type === type && d.body.connection_id === connectionId);
  }

  async close(): Promise<void> {
    this.server!.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

describe('webhooks: signed connection events from a Redis-backed queue', () => {
  let redis: TestRedis;
  let fake: FakeProvider;

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
  });

  afterAll(async () => {
    await fake.close();
    await redis.close();
  });

  describe('with the receiver up', () => {
    let receiver: Receiver;
    let broker: TestBroker;

    beforeAll(async () => {
      receiver = await Receiver.start();
      broker = await startTestBroker({
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: 'wh1:',
        WEBHOOK_URL: receiver.url,
        WEBHOOK_SECRET: SECRET,
        ...providerEnv('jobber', fake.url),
      });
      // main.ts starts the dispatcher; the harness leaves that to the test.
      broker.broker.webhooks!.start();
    });

    afterAll(async () => {
      await broker.close();
      await receiver.close();
    });

    it('sends connection.created, signed over timestamp and body, when a connection is first made', async () => {
      const result = await broker.connect('jobber', 'acct-created');
      expect(result.callback.status).toBe(200);
      await waitFor(() => receiver.of('connection.created', 'acct-created').length === 1);
      const [delivery] = receiver.of('connection.created', 'acct-created');
      expect(delivery!.body).toMatchObject({
        type: 'connection.created',
        provider: 'jobber',
        connection_id: 'acct-created',
      });
      expect(Number.isNaN(Date.parse(delivery!.body.occurred_at))).toBe(false);
      expect(delivery!.headers['content-type']).toMatch(/^application\/json/);
      expect(delivery!.headers['x-broker-event']).toBe('connection.created');
      expect(delivery!.headers['x-broker-delivery']).toBe(delivery!.body.id);
      expect(
        verifySignature(delivery!.headers['x-broker-signature'] as string, delivery!.rawBody, SECRET),
      ).toBe(true);
      // The signature binds the body and the secret: a changed byte or another secret fails.
      expect(
        verifySignature(
          delivery!.headers['x-broker-signature'] as string,
          delivery!.rawBody.replace('acct', 'acc7'),
          SECRET,
        ),
      ).toBe(false);
      expect(
        verifySignature(delivery!.headers['x-broker-signature'] as string, delivery!.rawBody, `${SECRET}x`),
      ).toBe(false);
      const t = Number(/t=(\d+)/.exec(delivery!.headers['x-broker-signature'] as string)![1]);
      expect(Math.abs(t - delivery!.receivedAt / 1000)).toBeLessThan(60);
    });

    it('does not send connection.created again when the same connection is connected again', async () => {
      await broker.connect('jobber', 'acct-again');
      await waitFor(() => receiver.of('connection.created', 'acct-again').length === 1);
      await broker.connect('jobber', 'acct-again');
      await broker.connect('jobber', 'acct-marker');
      await waitFor(() => receiver.of('connection.created', 'acct-marker').length === 1);
      expect(receiver.of('connection.created', 'acct-again')).toHaveLength(1);
    });

    it('sends connection.reauthorization_required when the provider refuses the refresh token with invalid_grant', async () => {
      await broker.connect('jobber', 'acct-reauth');
      fake.onToken((_req, res) => void res.status(400).json({ error: 'invalid_grant' }));
      try {
        const token = await broker.api('/internal/connections/jobber/acct-reauth/token?force_refresh=true');
        expect(token.status).toBe(409);
        expect(token.body.code).toBe('reauthorization_required');
      } finally {
        fake.onToken(undefined);
      }
      await waitFor(() => receiver.of('connection.reauthorization_required', 'acct-reauth').length === 1);
      const [delivery] = receiver.of('connection.reauthorization_required', 'acct-reauth');
      expect(delivery!.body).toMatchObject({ provider: 'jobber', reason: 'invalid_grant' });
      expect(
        verifySignature(delivery!.headers['x-broker-signature'] as string, delivery!.rawBody, SECRET),
      ).toBe(true);
    });

    it('sends connection.deleted when a connection is deleted', async () => {
      await broker.connect('jobber', 'acct-deleted');
      const deleted = await broker.api('/internal/connections/jobber/acct-deleted', { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      await waitFor(() => receiver.of('connection.deleted', 'acct-deleted').length === 1);
      const [delivery] = receiver.of('connection.deleted', 'acct-deleted');
      expect(
        verifySignature(delivery!.headers['x-broker-signature'] as string, delivery!.rawBody, SECRET),
      ).toBe(true);
    });

    it('leaves the queue empty once everything is delivered', async () => {
      const client = redis.client();
      try {
        await waitFor(() => receiver.of('connection.deleted', 'acct-deleted').length === 1);
        expect(await client.zcard('wh1:{webhooks}:queue')).toBe(0);
        expect(await client.hlen('wh1:{webhooks}:payloads')).toBe(0);
      } finally {
        client.disconnect();
      }
    });
  });

  it('delivers an event later, with backoff, when the receiver fails the first attempts', async () => {
    const receiver = await Receiver.start();
    const broker = await startTestBroker({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'wh2:',
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      ...providerEnv('jobber', fake.url),
    });
    const client = redis.client();
    try {
      // The dispatcher is driven by hand here, looking ahead on Redis's clock instead of waiting.
      const dispatcher = broker.broker.webhooks!;
      receiver.failNext = 2;
      await broker.connect('jobber', 'acct-retry');
      await waitForAsync(async () => (await client.zcard('wh2:{webhooks}:queue')) === 1);

      expect(await dispatcher.deliverDue()).toBe(0);
      expect(receiver.attempts).toBe(1);
      // Backed off: not due again at once.
      expect(await dispatcher.deliverDue()).toBe(0);
      expect(receiver.attempts).toBe(1);
      // About 2 s later it is tried again (and fails again), then about 4 s after that it arrives.
      expect(await dispatcher.deliverDue(3_000)).toBe(0);
      expect(receiver.attempts).toBe(2);
      expect(await dispatcher.deliverDue(3_000)).toBe(0);
      expect(receiver.attempts).toBe(2);
      expect(await dispatcher.deliverDue(6_000)).toBe(1);
      expect(receiver.attempts).toBe(3);
      const [delivery] = receiver.of('connection.created', 'acct-retry');
      expect(
        verifySignature(delivery!.headers['x-broker-signature'] as string, delivery!.rawBody, SECRET),
      ).toBe(true);
      expect(await client.zcard('wh2:{webhooks}:queue')).toBe(0);
    } finally {
      client.disconnect();
      await broker.close();
      await receiver.close();
    }
  });

  it('keeps events queued while the receiver is down, and a new broker on the same Redis delivers them', async () => {
    const port = await freePort();
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'wh3:',
      WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
      WEBHOOK_SECRET: SECRET,
      ...providerEnv('jobber', fake.url),
    };
    const client = redis.client();
    try {
      const first = await startTestBroker(env);
      first.broker.webhooks!.start();
      await first.connect('jobber', 'acct-restart');
      const deleted = await first.api('/internal/connections/jobber/acct-restart', { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      // Both events are queued, and the running dispatcher has tried (and failed) at least once.
      await waitForAsync(async () => (await client.hlen('wh3:{webhooks}:payloads')) === 2);
      await waitForAsync(async () => {
        const payloads = Object.values(await client.hgetall('wh3:{webhooks}:payloads')).map((p) =>
          JSON.parse(p),
        );
        return payloads.some((p: { attempts: number }) => p.attempts > 0);
      });
      await first.close();

      const receiver = await Receiver.start(port);
      const second = await startTestBroker(env);
      try {
        second.broker.webhooks!.start();
        await waitFor(() => receiver.deliveries.length === 2, 15_000);
        expect(receiver.deliveries.map((d) => d.body.type).sort()).toEqual([
          'connection.created',
          'connection.deleted',
        ]);
        for (const d of receiver.deliveries) {
          expect(d.body.connection_id).toBe('acct-restart');
          expect(verifySignature(d.headers['x-broker-signature'] as string, d.rawBody, SECRET)).toBe(true);
        }
        await waitForAsync(async () => (await client.zcard('wh3:{webhooks}:queue')) === 0);
      } finally {
        await second.close();
        await receiver.close();
      }
    } finally {
      client.disconnect();
    }
  });
});
