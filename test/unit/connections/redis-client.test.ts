import Redis, { Cluster } from 'ioredis';
import { EventEmitter } from 'node:events';
import {
  REVIVED_EVENT,
  createRedisClient,
  reconnectAfterAbortedConnect,
} from '../../../src/connections/redis-client';

/** Clients are built with lazyConnect so nothing dials out; only their options are read. */
describe('createRedisClient', () => {
  const clients: Array<Redis | Cluster> = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));

  function build(config: Parameters<typeof createRedisClient>[0]) {
    const client = createRedisClient(config, { lazyConnect: true });
    clients.push(client);
    return client;
  }

  it('fails requests fast while Redis is away: no offline queue, a command timeout, one retry', () => {
    const client = build({ url: 'redis://127.0.0.1:6390/2' }) as Redis;
    expect(client.options).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      port: 6390,
      db: 2,
    });
    expect(client.options.commandTimeout).toBeLessThanOrEqual(2000);
    // Keeps reconnecting, never more than half a second apart (resume within 3 s).
    const retry = client.options.retryStrategy!;
    expect([1, 5, 50, 5000].map((n) => retry(n))).toEqual([100, 500, 500, 500]);
  });

  it('uses the sentinels over REDIS_URL, keeping its password, and follows a new master at once', () => {
    const client = build({
      url: 'redis://:s3cret@ignored:1',
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      sentinelName: 'main',
    }) as Redis;
    expect(client.options).toMatchObject({
      name: 'main',
      password: 's3cret',
      failoverDetector: true,
      enableOfflineQueue: false,
    });
    expect(client.options.sentinels).toEqual([{ host: '127.0.0.1', port: 26379 }]);
    // A write refused by a demoted master makes the client ask the sentinels again.
    const reconnect = client.options.reconnectOnError!;
    expect(reconnect(new Error("READONLY You can't write against a read only replica."))).toBeTruthy();
    expect(
      reconnect(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBeFalsy();
  });

  it('builds a cluster client from the nodes without an offline queue', () => {
    const client = build({
      url: 'redis://127.0.0.1:6379',
      clusterNodes: [{ host: '127.0.0.1', port: 7000 }],
    });
    expect(client).toBeInstanceOf(Cluster);
    expect((client as Cluster).options.enableOfflineQueue).toBe(false);
  });
});

/** A stand-in for an ioredis client: its status events, `connect`, and ioredis' `manuallyClosing`. */
class FakeClient extends EventEmitter {
  status = 'wait';
  manuallyClosing = false;
  connects = 0;
  async connect(): Promise<void> {
    this.connects += 1;
    this.go('connecting');
  }
  go(status: string): void {
    this.status = status;
    this.emit(status);
  }
}

describe('reconnectAfterAbortedConnect (ioredis ends a Sentinel client its failover detector cut mid-connect)', () => {
  const settle = () => new Promise((r) => setTimeout(r, 30));

  it('reconnects a client that went from connecting straight to end unasked, and says so', async () => {
    const client = new FakeClient();
    const revived = jest.fn();
    client.on(REVIVED_EVENT, revived);
    reconnectAfterAbortedConnect(client, 5);
    client.go('connecting');
    client.go('end');
    await settle();
    expect(client.connects).toBe(1);
    expect(revived).toHaveBeenCalledTimes(1);
    expect(client.status).toBe('connecting');
  });

  it('leaves alone an end after a close (the client closed the usual way: quit, disconnect, or given up)', async () => {
    const client = new FakeClient();
    reconnectAfterAbortedConnect(client, 5);
    for (const s of ['connecting', 'connect', 'ready', 'close', 'end']) client.go(s);
    await settle();
    expect(client.connects).toBe(0);
  });

  it('leaves alone an end the broker asked for while connecting (disconnect during start-up or shutdown)', async () => {
    const client = new FakeClient();
    reconnectAfterAbortedConnect(client, 5);
    client.go('connecting');
    client.manuallyClosing = true;
    client.go('end');
    await settle();
    expect(client.connects).toBe(0);
  });

  it('does not reconnect when the broker closes the client before the delay is over', async () => {
    const client = new FakeClient();
    reconnectAfterAbortedConnect(client, 20);
    client.go('connecting');
    client.go('end');
    client.manuallyClosing = true;
    await new Promise((r) => setTimeout(r, 60));
    expect(client.connects).toBe(0);
  });
});
