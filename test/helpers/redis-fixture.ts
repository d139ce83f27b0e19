import Redis from 'ioredis';
import { ensureBuilt } from './broker-process';
import { FakeProvider, FakeProviderOptions } from './fake-provider';
import { TestRedis } from './redis-server';
import { startedFields } from './started-fields';

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

  let client: Redis | undefined;
  const newClient = (): Redis => {
    if (!redis) throw new Error('useRedis: newClient is called before its beforeAll has run');
    const c = redis.client();
    clients.push(c);
    return c;
  };
  const fields = startedFields<Omit<RedisFixture, 'newClient'>>('useRedis', {
    redis: () => redis,
    client: () => (redis ? (client ??= newClient()) : undefined),
  });
  return Object.assign(fields, { newClient });
}

export interface RedisAndFake extends RedisFixture {
  readonly fake: FakeProvider;
}

/**
 * useRedis plus one fake provider started with `fakeOptions`, closed in afterAll; with `build`,
 * `dist/` is built first (for suites that start real `node dist/main.js` processes). Brokers are
 * the test's own: close them in an afterAll declared before this call, so they go before Redis.
 */
export function useRedisAndFake(
  fakeOptions: FakeProviderOptions = {},
  options: { build?: boolean } = {},
): RedisAndFake {
  const base = useRedis();
  let fake: FakeProvider | undefined;

  beforeAll(
    async () => {
      if (options.build) await ensureBuilt();
      fake = await FakeProvider.start(fakeOptions);
    },
    options.build ? 180_000 : undefined,
  );

  afterAll(async () => {
    await fake?.close();
  });

  // Object.assign reads a source's getters: the fixture's fields are passed on as getters instead.
  const fields = startedFields<Omit<RedisAndFake, 'newClient'>>('useRedisAndFake', {
    redis: () => base.redis,
    client: () => base.client,
    fake: () => fake,
  });
  return Object.assign(fields, { newClient: base.newClient });
}
