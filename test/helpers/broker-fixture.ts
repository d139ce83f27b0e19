import Redis, { Cluster } from 'ioredis';
import { TestBroker, providerEnv, startTestBroker } from './broker-harness';
import { FakeProvider, FakeProviderOptions } from './fake-provider';
import { TestRedisCluster } from './redis-cluster';
import { TestRedis } from './redis-server';
import { startedFields } from './started-fields';

export interface BrokerOnRedis {
  readonly redis: TestRedis;
  /** A plain client on that Redis for assertions, made on first read. */
  readonly client: Redis;
  readonly fake: FakeProvider;
  readonly broker: TestBroker;
  /** With `options.second`: another broker on the same Redis and fake (another process, a variant). */
  readonly second: TestBroker;
}

type ExtraEnv = Record<string, string> | ((fakeUrl: string) => Record<string, string>);

/**
 * The set-up most in-process broker tests share, for the describe block it is called in: in
 * beforeAll a private Redis, one fake provider and one broker on them with `jobber` on the fake,
 * plus `extraEnv` (a function of the fake's URL where the env needs it); in afterAll all of it
 * closed again. The handle's fields can be read from beforeAll on. A test's own afterAll runs
 * after this one's when declared after the call (Jest keeps declaration order).
 */
export function useBrokerOnRedis(
  extraEnv: ExtraEnv = {},
  fakeOptions: FakeProviderOptions = {},
  options: {
    second?: ExtraEnv;
    /** `false`: no `jobber` on the fake (a test that counts the configured providers). */
    jobber?: boolean;
    /** `true`: all of it started afresh for every test (beforeEach/afterEach), not once for the block. */
    eachTest?: boolean;
  } = {},
): BrokerOnRedis {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  let fake: FakeProvider | undefined;
  let broker: TestBroker | undefined;
  let second: TestBroker | undefined;
  const envOf = (extra: ExtraEnv, fakeUrl: string) => (typeof extra === 'function' ? extra(fakeUrl) : extra);
  const [before, after] = options.eachTest ? [beforeEach, afterEach] : [beforeAll, afterAll];

  before(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start(fakeOptions);
    const base = {
      REDIS_URL: redis.url,
      ...(options.jobber === false ? {} : providerEnv('jobber', fake.url)),
    };
    broker = await startTestBroker({ ...base, ...envOf(extraEnv, fake.url) });
    if (options.second) second = await startTestBroker({ ...base, ...envOf(options.second, fake.url) });
  });

  after(async () => {
    await second?.close();
    await broker?.close();
    client?.disconnect();
    // With eachTest, the next test's client is made on the next Redis.
    client = undefined;
    await fake?.close();
    await redis?.close();
  });

  return startedFields<BrokerOnRedis>('useBrokerOnRedis', {
    redis: () => redis,
    client: () => (client ??= redis?.client()),
    fake: () => fake,
    broker: () => broker,
    second: () => second,
  });
}

export interface BrokerOnCluster {
  readonly cluster: TestRedisCluster;
  /** A cluster client for assertions (every master reachable through it). */
  readonly inspect: Cluster;
  readonly fake: FakeProvider;
  readonly broker: TestBroker;
  /** With `options.second`: another broker process on the same cluster and fake, with the same env. */
  readonly second: TestBroker;
}

/**
 * As useBrokerOnRedis, on a three-master Redis Cluster: one fake provider and one broker
 * (REDIS_CLUSTER_NODES, a REDIS_URL that points nowhere: the nodes take precedence) with `extraEnv`
 * (its `providerEnv` entries as it needs them, a function of the fake's URL).
 */
export function useBrokerOnCluster(
  extraEnv: (fakeUrl: string) => Record<string, string>,
  fakeOptions: FakeProviderOptions = {},
  options: { second?: boolean } = {},
): BrokerOnCluster {
  let cluster: TestRedisCluster | undefined;
  let inspect: Cluster | undefined;
  let fake: FakeProvider | undefined;
  let broker: TestBroker | undefined;
  let second: TestBroker | undefined;

  beforeAll(async () => {
    cluster = await TestRedisCluster.start();
    fake = await FakeProvider.start(fakeOptions);
    const env = {
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      ...extraEnv(fake.url),
    };
    broker = await startTestBroker(env);
    if (options.second) second = await startTestBroker(env);
    inspect = cluster.client();
  }, 60_000);

  afterAll(async () => {
    inspect?.disconnect();
    await second?.close();
    await broker?.close();
    await fake?.close();
    await cluster?.close();
  });

  return startedFields<BrokerOnCluster>('useBrokerOnCluster', {
    cluster: () => cluster,
    inspect: () => inspect,
    fake: () => fake,
    broker: () => broker,
    second: () => second,
  });
}
