import 'dotenv/config';
import { Server, createServer } from 'node:http';
import Redis from 'ioredis';
import { ConfigError } from '../config/config-error';
import { waitForReady } from '../connections/redis-client';
import { DEMO_PROVIDER_ID, createDemo } from './create-demo';
import { describeSettings } from './demo-settings';

/**
 * `npm run demo`: the broker plus its sandbox provider on this machine, against the local Redis.
 * It reads the broker's variables where the user set them (environment or `.env`) and generates
 * the rest for the run; the run's Redis keys live under their own prefix and are removed when it
 * stops (Ctrl-C, SIGTERM to npm or to node; see docs/client.md).
 */
async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const publicPort = port('PORT', 3000);
  const internalPort = port('INTERNAL_PORT', 3001);

  if (!(await redisAnswers(redisUrl))) {
    say(
      process.stderr,
      [
        `No Redis answers at ${redactUrl(redisUrl)}. The demo keeps its connections there.`,
        '',
        'Start one, then run `npm run demo` again:',
        '  redis-server --daemonize yes',
        'or, with Docker:',
        '  docker run -p 6379:6379 redis:7',
        '',
        '(Or point REDIS_URL at a Redis you have: REDIS_URL=redis://host:6379 npm run demo)',
      ].join('\n'),
    );
    process.exit(1);
  }

  let demo;
  try {
    demo = createDemo({
      redisUrl,
      publicPort,
      internalPort,
      logLevel: process.env.LOG_LEVEL || 'warn',
      env: process.env,
      portSources: {
        public: process.env.PORT ? 'environment' : 'default',
        internal: process.env.INTERNAL_PORT ? 'environment' : 'default',
      },
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      say(process.stderr, `The demo cannot start:\n${error.problems.map((p) => `  ${p}`).join('\n')}`);
      process.exit(1);
    }
    throw error;
  }
  const { broker } = demo;
  broker.redis.on('error', () => undefined);
  await waitForReady(broker.redis, 3000);

  const servers: Server[] = [];
  try {
    servers.push(await listen(createServer(demo.publicApp), publicPort, '127.0.0.1'));
    servers.push(await listen(createServer(demo.internalHandler), internalPort, '127.0.0.1'));
  } catch (error) {
    const inUse = (error as { code?: string }).code === 'EADDRINUSE';
    say(
      process.stderr,
      inUse
        ? `Port ${(error as { port?: number }).port ?? ''} is in use. Stop what runs there, or choose others: PORT=4000 INTERNAL_PORT=4001 npm run demo`
        : `The demo cannot listen: ${(error as Error).message}`,
    );
    process.exit(1);
  }
  // Browsers may resolve localhost to ::1 first: listen there too when the machine has IPv6.
  await listen(createServer(demo.publicApp), publicPort, '::1')
    .then((server) => servers.push(server))
    .catch(() => undefined);
  broker.sweeper.start();

  const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
  say(
    process.stdout,
    [
      '',
      bold('OAuth Broker demo is running.'),
      '',
      'Configuration (your environment or .env where set, else made for this run):',
      ...describeSettings([
        ...demo.settings,
        {
          name: 'REDIS_URL',
          source: process.env.REDIS_URL ? 'environment' : 'default',
          shown: redactUrl(redisUrl),
        },
      ]),
      '',
      `  1. Open ${bold(`${demo.publicUrl}/demo`)} and click "Connect a Sandbox account"`,
      `     (or open the connect link directly: ${demo.publicUrl}/demo/connect).`,
      '     The sandbox provider asks you to Allow or Deny.',
      '',
      '  2. Fetch the token the broker stored, from the internal API:',
      `     ${demo.tokenCommand({ withKey: true })}`,
      '',
      '     Refresh it (the sandbox rotates refresh tokens):',
      `     ${demo.tokenCommand({ withKey: true, forceRefresh: true })}`,
      '',
      '  3. Use the access token at the sandbox API:',
      `     curl -s -H "Authorization: Bearer <access_token>" ${demo.publicUrl}/sandbox/api/me`,
      '',
      `  Provider "${DEMO_PROVIDER_ID}" is defined as data in src/demo/create-demo.ts; the internal API key above`,
      demo.keyFromUser
        ? '  is the first of your INTERNAL_API_KEYS. More: GET /internal/providers, GET /internal/openapi.json, GET /metrics.'
        : '  was generated for this run. More: GET /internal/providers, GET /internal/openapi.json, GET /metrics.',
      `  Broker log lines: LOG_LEVEL=info npm run demo. Redis: ${redactUrl(redisUrl)}, keys under "${demo.config.redisKeyPrefix}".`,
      '',
      "Press Ctrl-C to stop, or send SIGTERM to npm or to this process (the run's keys are removed from Redis).",
      `Process id: ${process.pid}.`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await broker.sweeper.stop();
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve(undefined)))));
    await broker.connections.drain();
    const removed = await removeKeys(broker.redis as Redis, demo.config.redisKeyPrefix).catch(() => 0);
    await broker.redis.quit().catch(() => broker.redis.disconnect());
    say(process.stdout, `\nStopped; removed ${removed} demo key(s) from Redis.`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('SIGHUP', () => void stop());
  // Started by `npm run demo`: should npm die without passing a signal on (SIGKILL, a closed
  // terminal), this process is re-parented; it stops then rather than outlive its launcher.
  if (process.env.npm_lifecycle_event) {
    const launcher = process.ppid;
    setInterval(() => {
      if (process.ppid !== launcher) void stop();
    }, 500).unref();
  }
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    say(process.stderr, `${name}: must be a port number (1-65535)`);
    process.exit(1);
  }
  return n;
}

/** One PING with a short timeout, no retries: is anyone there? */
async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** The run's own keys, found by SCAN under its random prefix (never KEYS). */
async function removeKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await redis.scan(
      cursor,
      'MATCH',
      `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`,
      'COUNT',
      500,
    );
    cursor = next;
    if (keys.length > 0) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'REDIS_URL';
  }
}

function listen(server: Server, portNumber: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(portNumber, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

main().catch((error: unknown) => {
  say(process.stderr, `The demo failed: ${error instanceof Error ? error.message : 'unknown error'}`);
  process.exit(1);
});

/** The demo talks to a person at a terminal: plain lines, no log format (nothing secret is printed). */
function say(stream: NodeJS.WriteStream, text: string): void {
  stream.write(`${text}\n`);
}
