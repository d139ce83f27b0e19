import { Server, createServer } from 'node:http';
import { Demo, createDemo } from '../../src/demo/create-demo';
import { freePort } from './free-port';
import { TestRedis } from './redis-server';
import { startedFields } from './started-fields';

/** A demo (`npm run demo`) served in this process on free ports. */
export interface RunningDemo {
  demo: Demo;
  servers: Server[];
}

export interface StartDemoOptions {
  /** The user's environment, as `createDemo` takes it. */
  env?: Record<string, string | undefined>;
  /** `false` leaves the internal API unreachable (nothing listens on its port). */
  internal?: boolean;
}

export async function startDemo(
  redisUrl: string,
  keyPrefix: string,
  options: StartDemoOptions = {},
): Promise<RunningDemo> {
  const [publicPort, internalPort] = [await freePort(), await freePort()];
  const demo = createDemo({
    redisUrl,
    publicPort,
    internalPort,
    publicHost: '127.0.0.1',
    keyPrefix,
    logLevel: 'silent',
    env: options.env,
  });
  const listeners: Array<[Server, number]> = [[createServer(demo.publicApp), publicPort]];
  if (options.internal !== false) listeners.push([createServer(demo.internalHandler), internalPort]);
  await Promise.all(
    listeners.map(([s, port]) => new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()))),
  );
  return { demo, servers: listeners.map(([s]) => s) };
}

export async function stopDemo(running: RunningDemo | undefined): Promise<void> {
  if (!running) return;
  await running.demo.broker.sweeper.stop();
  for (const s of running.servers) s.closeAllConnections();
  await Promise.all(running.servers.map((s) => new Promise((r) => s.close(r))));
  running.demo.broker.redis.disconnect();
}

/** A demo for useDemosOnRedis: its key prefix, and how startDemo starts it. */
export interface DemoSpec extends StartDemoOptions {
  keyPrefix: string;
}

/**
 * For the describe block it is called in: in beforeAll a private Redis and one demo on it per
 * entry of `specs` (each under its own key prefix); in afterAll the demos stopped and the Redis,
 * with every key they wrote, closed. The answer's fields are the demos, readable from beforeAll on.
 */
export function useDemosOnRedis<K extends string>(specs: Record<K, DemoSpec>): Record<K, Demo> {
  let redis: TestRedis | undefined;
  const running = new Map<K, RunningDemo>();
  const names = Object.keys(specs) as K[];

  beforeAll(async () => {
    redis = await TestRedis.start();
    for (const name of names) {
      const { keyPrefix, ...options } = specs[name];
      running.set(name, await startDemo(redis.url, keyPrefix, options));
    }
  });

  afterAll(async () => {
    for (const name of names) await stopDemo(running.get(name));
    await redis?.close();
  });

  const read = {} as { [N in K]: () => Demo | undefined };
  for (const name of names) read[name] = () => running.get(name)?.demo;
  return startedFields<Record<K, Demo>>('useDemosOnRedis', read);
}
