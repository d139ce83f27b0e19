import { Server, createServer } from 'node:http';
import { Demo, createDemo } from '../../src/demo/create-demo';
import { freePort } from './free-port';

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
