// Sweep cost against the number of connections (issue 11): one sweep of the due-work schedule
// with 100 connections due, among 1,000 and then among 100,000, in a private redis-server.
// Reports the sweep's wall time and the Redis commands it ran (INFO commandstats before/after),
// an idle sweep (nothing due), and the memory of the schedule index per connection
// (MEMORY USAGE of the sorted set ÷ its members). Not part of `npm test`; needs `npm run build`.
//
//   node bench/sweep-scale.mjs [--total=100000] [--due=100]
import { existsSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chunkedStats, commandCalls, diffCalls, installCleanup, sleep, startRedis } from './lib.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
if (!existsSync(join(ROOT, 'dist', 'create-broker.js'))) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(1);
}
const { loadConfig } = require(join(ROOT, 'dist/config/load-config.js'));
const { createBroker } = require(join(ROOT, 'dist/create-broker.js'));
const { createLogger } = require(join(ROOT, 'dist/observability/logger.js'));
const { waitForReady } = require(join(ROOT, 'dist/connections/redis-client.js'));

const arg = (name, fallback) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
};
const TOTAL = arg('total', 100_000);
const SMALL = 1_000;
const DUE = arg('due', 100);
const PROVIDER = 'bonjoro';
const REPEATS = 3;

installCleanup(15 * 60_000);

/** A token endpoint that answers every refresh at once (counts them). */
async function startTokenEndpoint() {
  let refreshes = 0;
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n += 1;
      refreshes += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: `at-new-${n}`, token_type: 'bearer', expires_in: 3600 }));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    refreshes: () => refreshes,
    close: () => server.close(),
  };
}

function brokerFor(redisUrl, tokenUrl, keepaliveAfter) {
  const env = {
    PUBLIC_URL: 'http://127.0.0.1:9',
    SESSION_SECRET: 'a-session-secret-that-is-long-enough-0123456789',
    TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    INTERNAL_API_KEYS: 'bench-internal-key-0123456789abcdef',
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'silent',
    KEEPALIVE_AFTER: String(keepaliveAfter),
    REFRESH_AHEAD: 'false',
    SWEEP_INTERVAL: '15',
    BONJORO_CLIENT_ID: 'bench-client',
    BONJORO_CLIENT_SECRET: 'bench-secret',
    BONJORO_AUTHORIZATION_URL: `${tokenUrl}/authorize`,
    BONJORO_TOKEN_URL: `${tokenUrl}/token`,
  };
  const config = loadConfig(env);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return createBroker(config, { logger: createLogger('silent', sink) });
}

/** Writes `count` connections through the service a connect or import uses. */
async function write(broker, from, count, label) {
  const provider = broker.registry.get(PROVIDER);
  const started = performance.now();
  const BATCH = 500;
  for (let i = from; i < from + count; i += BATCH) {
    const jobs = [];
    for (let j = i; j < Math.min(from + count, i + BATCH); j++) {
      jobs.push(
        broker.connections.saveTokens(
          provider,
          `${label}-${j}`,
          {
            access_token: `at-${j}-${'x'.repeat(40)}`,
            refresh_token: `rt-${j}-${'y'.repeat(40)}`,
            token_type: 'Bearer',
            expires_at: Date.now() + 3_600_000,
          },
          [],
        ),
      );
    }
    await Promise.all(jobs);
  }
  return (performance.now() - started) / 1000;
}

const sum = (calls) => Object.values(calls).reduce((a, b) => a + b, 0);
const fmt = (calls) =>
  Object.entries(calls)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

/** One sweep by `sweeper`, measured: wall time, Redis commands, refreshes at the provider. */
async function measureSweep(client, broker, endpoint) {
  const refreshesBefore = endpoint.refreshes();
  const before = await commandCalls(client);
  const t0 = performance.now();
  const worked = await broker.sweeper.sweepOnce();
  const ms = performance.now() - t0;
  const calls = diffCalls(before, await commandCalls(client));
  // The INFO call itself shows up once in the after-reading.
  delete calls.info;
  return { worked, ms, calls, total: sum(calls), refreshes: endpoint.refreshes() - refreshesBefore };
}

async function main() {
  const redis = await startRedis();
  const client = redis.client;
  const endpoint = await startTokenEndpoint();
  // Bulk connections are planned 30 days out; the due ones 1 s out; the sweeper plans 30 days.
  const bulk = brokerFor(redis.url, endpoint.url, 30 * 86400);
  const soon = brokerFor(redis.url, endpoint.url, 1);
  const sweeping = brokerFor(redis.url, endpoint.url, 30 * 86400);
  for (const b of [bulk, soon, sweeping]) await waitForReady(b.redis, 5000);
  const results = [];

  // Warm-up: scripts loaded, HTTP connections to the provider open, code compiled.
  await write(soon, 0, DUE, 'warm');
  await sleep(1200);
  await sweeping.sweeper.sweepOnce();
  let written = DUE;
  let dueBatch = 0;
  for (const size of [SMALL, TOTAL]) {
    const bulkCount = size - written - REPEATS * DUE;
    const writeSeconds = await write(bulk, written, bulkCount, 'idle');
    written += bulkCount;
    // REPEATS sweeps, each with DUE connections freshly due among all the others.
    const sweeps = [];
    let scheduled = 0;
    let due = 0;
    for (let r = 0; r < REPEATS; r++) {
      dueBatch += 1;
      await write(soon, 0, DUE, `due${dueBatch}`);
      written += DUE;
      // Let them fall due; the bulk stays 30 days out.
      await sleep(1200);
      ({ members: scheduled, due } = await chunkedStats(client, 'schedule'));
      sweeps.push(await measureSweep(client, sweeping, endpoint));
    }
    sweeps.sort((a, b) => a.ms - b.ms);
    const sweep = sweeps[Math.floor(sweeps.length / 2)];
    const idle = await measureSweep(client, sweeping, endpoint);
    const { memory, sample } = await chunkedStats(client, 'schedule');
    const { memory: indexMemory } = await chunkedStats(client, 'connections');
    const memberBytes = sample.reduce((n, m) => n + Buffer.byteLength(m), 0) / sample.length;
    results.push({
      connections: scheduled,
      due,
      writeSeconds,
      sweep,
      idle,
      memory,
      indexMemory,
      memberBytes,
    });
    console.error(
      `bench: ${scheduled} connections written (${writeSeconds.toFixed(1)} s for the bulk); swept`,
    );
  }

  console.log(
    `\nSweep cost against all connections (${DUE} due each time; median of ${REPEATS} sweepOnce() calls)\n`,
  );
  console.log(
    '| connections | due | sweep ms | Redis commands | refreshes | idle sweep ms | idle commands | schedule bytes | bytes/connection (schedule) | bytes/connection (listing index) |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.connections.toLocaleString('en')} | ${r.due} | ${r.sweep.ms.toFixed(0)} | ${r.sweep.total} | ${r.sweep.refreshes} | ${r.idle.ms.toFixed(1)} | ${r.idle.total} | ${r.memory.toLocaleString('en')} | ${(r.memory / r.connections).toFixed(1)} | ${(r.indexMemory / r.connections).toFixed(1)} |`,
    );
  }
  console.log(
    `\n(members are \`provider:connection_id\`, here ${results[1].memberBytes.toFixed(1)} bytes on average, e.g. "${PROVIDER}:idle-12345")`,
  );
  for (const r of results) {
    console.log(
      `${r.connections} connections: sweep ran ${fmt(r.sweep.calls)}; idle sweep ran ${fmt(r.idle.calls)}`,
    );
  }
  const [small, large] = results;
  console.log(
    `\nratio ${large.connections}/${small.connections} connections: sweep time ×${(large.sweep.ms / small.sweep.ms).toFixed(2)}, ` +
      `Redis commands ×${(large.sweep.total / small.sweep.total).toFixed(2)}`,
  );

  for (const b of [bulk, soon, sweeping]) b.redis.disconnect();
  endpoint.close();
  await redis.proc.stop();
  process.exit(0);
}

main();
