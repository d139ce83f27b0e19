import Redis from 'ioredis';
import type { Socket } from 'node:net';
import { coalesceWrites, createRedisClient, waitForReady } from '../../src/connections/redis-client';
import { TestRedis } from '../helpers/redis-server';

/** How the client's socket was written to: each `_write`/`_writev` call is one system call. */
function watchWrites(client: Redis): { writes: number; chunks: number } {
  const seen = { writes: 0, chunks: 0 };
  const socket = client.stream as Socket & {
    _write: (...args: unknown[]) => void;
    _writev: (chunks: unknown[], ...rest: unknown[]) => void;
  };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (...args) => {
    seen.writes++;
    seen.chunks++;
    write(...args);
  };
  socket._writev = (chunks, ...rest) => {
    seen.writes++;
    seen.chunks += chunks.length;
    writev(chunks, ...rest);
  };
  return seen;
}

/**
 * While commands await their replies, the ones the broker sends in one turn of the event loop
 * leave in one socket write (under load, a write per command was the token API's largest cost);
 * a command sent while none is in flight leaves at once. Nothing else changes: every command gets
 * its own reply, in order, and the client still works after a reconnect.
 */
describe('Redis writes coalesced per turn of the event loop', () => {
  let redis: TestRedis;
  let client: Redis;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = createRedisClient({ url: redis.url }) as Redis;
    client.on('error', () => undefined);
    expect(await waitForReady(client, 5000)).toBe(true);
  });

  afterAll(async () => {
    client.disconnect();
    await redis.close();
  });

  it('sends the first command at once, the rest of the turn in one write, each answered with its own reply', async () => {
    await client.mset('wc:a', '1', 'wc:b', '2', 'wc:c', '3');
    const seen = watchWrites(client);
    const replies = await Promise.all([
      client.get('wc:a'),
      client.incr('wc:b'),
      client.get('wc:c'),
      client.get('wc:missing'),
      client.hget('wc:a', 'f').catch((error: Error) => error.message.slice(0, 9)),
      client.get('wc:b'),
    ]);
    expect(replies).toEqual(['1', 3, '3', null, 'WRONGTYPE', '3']);
    // The first found nothing in flight; the five sent behind it went out together.
    expect(seen).toEqual({ writes: 2, chunks: 6 });
  });

  it('sends a command at once when none is in flight', async () => {
    const seen = watchWrites(client);
    const reply = client.get('wc:a');
    // Written before this turn ends: an idle client's command waits for nothing.
    expect(seen).toEqual({ writes: 1, chunks: 1 });
    expect(await reply).toBe('1');
  });

  it('keeps working after the connection is lost and made again', async () => {
    // Without the guard of createRedisClient too: a client passed in to the broker is wrapped alike.
    const plain = coalesceWrites(new Redis(redis.url, { maxRetriesPerRequest: 1 }));
    plain.on('error', () => undefined);
    try {
      await plain.set('wc:x', 'before');
      // A command still in the corked buffer when the socket dies is retried once reconnected.
      const reconnected = new Promise<void>((resolve) => plain.once('ready', () => resolve()));
      const before = plain.get('wc:x');
      plain.stream.destroy();
      await reconnected;
      expect(await before).toBe('before');
      const seen = watchWrites(plain);
      const replies = [plain.set('wc:x', 'after'), plain.get('wc:x'), plain.strlen('wc:x')];
      expect(await Promise.all(replies)).toEqual(['OK', 'after', 5]);
      expect(seen).toEqual({ writes: 2, chunks: 3 });
    } finally {
      plain.disconnect();
    }
  });
});
