import 'dotenv/config';
import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { ConfigError } from './config/config-error';
import { loadConfig } from './config/load-config';
import { REVIVED_EVENT, waitForReady } from './connections/redis-client';
import { createBroker } from './create-broker';
import { createLogger, errorForLog } from './observability/logger';
import { createMetrics } from './observability/metrics';

// V8 lets a small heap's old generation grow up to 4x what survived the last full collection
// before collecting again; under load most of that growth is request garbage promoted while in
// flight, so RSS followed it (~145 MiB under the token benchmark, ~30 MiB of it live). Twice
// instead keeps it near 110 MiB at the same throughput (npm run bench). Set at run time: V8 does
// not take this option from NODE_OPTIONS, and the contract's command is `node dist/main.js`.
setFlagsFromString('--heap-growing-percent=100');

/** Wiring: config → Redis → stores → apps → listeners; graceful shutdown on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  let broker;
  try {
    config = loadConfig(process.env);
    broker = createBroker(config, {
      logger: createLogger(config.logLevel),
      metrics: createMetrics({ defaultMetrics: true }),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(
      `oauth-broker: cannot start, invalid configuration:\n${error.problems.map((p) => `  ${p}\n`).join('')}`,
    );
    process.exit(1);
  }
  const { logger } = broker;
  const { redis } = broker;
  let lastRedisError = 0;
  redis.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt: one line a few seconds is enough.
    if (Date.now() - lastRedisError > 5000) logger.warn({ err: errorForLog(error) }, 'redis error');
    lastRedisError = Date.now();
  });
  redis.on(REVIVED_EVENT, () =>
    logger.warn('redis client was ended by ioredis in the middle of a connection attempt; reconnecting'),
  );
  process.on('unhandledRejection', (reason) =>
    logger.error({ err: errorForLog(reason) }, 'unhandled rejection'),
  );

  const ready = await waitForReady(redis, 3000);
  if (!ready) logger.warn('redis is not answering yet; serving 503 until it does');

  const publicServer = createServer({ keepAliveTimeout: 5000 }, broker.publicApp);
  const internalServer = createServer({ keepAliveTimeout: 5000 }, broker.internalHandler);
  await Promise.all([
    listen(publicServer, config.port, config.host),
    listen(internalServer, config.internalPort, config.internalHost),
  ]);
  broker.sweeper.start();
  broker.webhooks?.start();
  logger.info(
    {
      public: address(publicServer),
      internal: address(internalServer),
      public_url: config.publicUrl,
      providers: broker.registry.enabled().map((p) => p.id),
    },
    'oauth-broker listening',
  );

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      publicServer.closeAllConnections();
      internalServer.closeAllConnections();
    }, config.shutdownTimeoutSeconds * 1000);
    deadline.unref();
    // The sweeper first: from this call on it starts no refresh, while the refreshes it has under
    // way run to the end and store their answer before Redis closes below (a provider that rotates
    // refresh tokens has already retired the old one: dropping that answer would cost the
    // connection). Then stop accepting at once; requests in flight finish beside those refreshes.
    const sweeperStopped = broker.sweeper.stop();
    await Promise.all([closeServer(publicServer), closeServer(internalServer), sweeperStopped]);
    clearTimeout(deadline);
    await broker.webhooks?.stop();
    // Refreshes a caller started are waited for like the sweeper's, whatever SHUTDOWN_TIMEOUT
    // says: the provider may have retired the refresh token already, so its answer must reach
    // Redis. drain() bounds that wait by the refresh lock's TTL (a provider call with its retry),
    // then waits for revocations under way (each within PROVIDER_TIMEOUT); this bound is a backstop.
    await Promise.race([
      broker.connections.drain(),
      new Promise((r) =>
        setTimeout(r, broker.connections.refreshLockTtlMs + 2 * config.providerTimeoutSeconds * 1000).unref(),
      ),
    ]);
    await redis.quit().catch(() => redis.disconnect());
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops accepting, drops idle keep-alive connections at once, lets requests in flight finish. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function address(server: Server): string {
  const a = server.address() as AddressInfo | null;
  return a ? `${a.address}:${a.port}` : 'unknown';
}

main().catch((error: unknown) => {
  process.stderr.write(
    `oauth-broker: failed to start: ${error instanceof Error ? error.message : 'unknown error'}\n`,
  );
  process.exit(1);
});
