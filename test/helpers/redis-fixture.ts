import Redis from 'ioredis';
import { TestRedis } from './redis-server';

export interface RedisFixture {
  readonly redis: TestRedis;
  /** A plain client on that Redis, made in beforeAll. */
  readonly client: Redis;
  /** Another client on it (a MONITOR, a second connection), disconnected in afterAll. */
  newClient(): Redis;
}

/**
 * For the describe block it is called in: a private Redis and a client on it in beforeAll, both
 * closed in afterAll. The fields can be read from beforeAll on; a test's own beforeAll declared
 * after the call runs after this one's (Jest keeps declaration order).
 */
export function useRedis(): RedisFixture {
  let redis: TestRedis | undefined;
  const clients: Redis[] = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.close();
  });

  const started = (): TestRedis => {
    if (!redis) throw new Error('useRedis: read before its beforeAll has run');
    return redis;
  };
  let client: Redis | undefined;
  const newClient = (): Redis => {
    const c = started().client();
    clients.push(c);
    return c;
  };
  return {
    get redis() {
      return started();
    },
    get client() {
      client ??= newClient();
      return client;
    },
    newClient,
  };
}
