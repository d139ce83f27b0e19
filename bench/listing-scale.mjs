// Filtered listing against the number of connections (issue 19): listing one end user's
// connections (`end_user_id`), one end user within an organisation (`end_user_id` + `tag`), and
// the first page of an organisation (`tag`), with 1,000 connections and then with 100,000 spread
// over 10,000 end users (10 each at both sizes) and 100 organisations (a tag), in a private
// redis-server. Reports the wall time per listing (median of many) and the Redis commands per
// listing (INFO commandstats before/after), and the Redis memory per connection with an end user
// and a tag beside the figure without (used_memory delta ÷ connections). Not part of `npm test`;
// needs `npm run build`.
//
//   node bench/listing-scale.mjs [--total=100000] [--listings=300]
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { commandCalls, diffCalls, indexedCount, installCleanup, parseInfo, startRedis } from './lib.mjs';

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
const PER_USER = 10;
const ORGS = 100;
const LISTINGS = arg('listings', 300);
const MEMORY_SAMPLE = 10_000;
const PROVIDER = 'bonjoro';

installCleanup(20 * 60_000);

function brokerFor(redisUrl) {
  const env = {
    PUBLIC_URL: 'http://127.0.0.1:9',
    SESSION_SECRET: 'a-session-secret-that-is-long-enough-0123456789',
    TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    INTERNAL_API_KEYS: 'bench-internal-key-0123456789abcdef',
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'silent',
    REFRESH_AHEAD: 'false',
    BONJORO_CLIENT_ID: 'bench-client',
    BONJORO_CLIENT_SECRET: 'bench-secret',
    BONJORO_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
    BONJORO_TOKEN_URL: 'http://127.0.0.1:9/token',
  };
  const config = loadConfig(env);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return createBroker(config, { logger: createLogger('silent', sink) });
}

const userOf = (j, users) => `u_${j % users}`;
const orgOf = (j) => `org_${j % ORGS}`;

/**
 * Writes connections [from, to) through the service a connect or import uses; with `users`, each
 * names an end user (10 connections each) and an organisation tag.
 */
async function write(broker, from, to, users) {
  const provider = broker.registry.get(PROVIDER);
  const started = performance.now();
  const BATCH = 500;
  for (let i = from; i < to; i += BATCH) {
    const jobs = [];
    for (let j = i; j < Math.min(to, i + BATCH); j++) {
      const owner = users ? { end_user: { id: userOf(j, users) }, tags: { org: orgOf(j) } } : undefined;
      jobs.push(
        broker.connections.saveTokens(
          provider,
          `conn-${j}`,
          {
            access_token: `at-${j}-${'x'.repeat(40)}`,
            refresh_token: `rt-${j}-${'y'.repeat(40)}`,
            token_type: 'Bearer',
            expires_at: Date.now() + 3_600_000,
          },
          [],
          owner,
        ),
      );
    }
    await Promise.all(jobs);
  }
  return (performance.now() - started) / 1000;
}

async function usedMemory(client) {
  return Number(parseInfo(await client.info('memory')).used_memory);
}

/** Redis bytes per connection: `count` connections written, with or without an owner. */
async function memoryPerConnection(client, broker, withOwner) {
  await client.flushall();
  const before = await usedMemory(client);
  await write(broker, 0, MEMORY_SAMPLE, withOwner ? MEMORY_SAMPLE / PER_USER : 0);
  const after = await usedMemory(client);
  await client.flushall();
  return (after - before) / MEMORY_SAMPLE;
}

const sum = (calls) => Object.values(calls).reduce((a, b) => a + b, 0);

/** `LISTINGS` listings made by `query(i)`, measured: median wall ms, Redis commands each, rows. */
async function measure(client, broker, query) {
  for (let i = 0; i < 20; i++) await broker.connections.list(query(i)); // warm
  const times = [];
  let rows = 0;
  const before = await commandCalls(client);
  for (let i = 0; i < LISTINGS; i++) {
    const t0 = performance.now();
    const page = await broker.connections.list(query(i));
    times.push(performance.now() - t0);
    rows += page.connections.length;
  }
  const calls = diffCalls(before, await commandCalls(client));
  delete calls.info;
  times.sort((a, b) => a - b);
  return {
    ms: times[Math.floor(times.length / 2)],
    p95: times[Math.floor(times.length * 0.95)],
    commands: sum(calls) / LISTINGS,
    rows: rows / LISTINGS,
    calls,
  };
}

async function main() {
  const redis = await startRedis();
  const client = redis.client;
  const broker = brokerFor(redis.url);
  await waitForReady(broker.redis, 5000);

  const plainBytes = await memoryPerConnection(client, broker, false);
  const ownedBytes = await memoryPerConnection(client, broker, true);
  console.error(`bench: memory measured over ${MEMORY_SAMPLE} connections each way`);

  const results = [];
  for (const size of [SMALL, TOTAL]) {
    await client.flushall();
    const users = size / PER_USER;
    const writeSeconds = await write(broker, 0, size, users);
    const count = await indexedCount(client);
    console.error(`bench: ${count} connections written in ${writeSeconds.toFixed(1)} s; listing`);
    const userQuery = (i) => ({ endUserId: userOf((i * 7919) % users, users), limit: 50 });
    const byUser = await measure(client, broker, userQuery);
    const byUserAndOrg = await measure(client, broker, (i) => {
      const j = (i * 7919) % users;
      return { endUserId: userOf(j, users), tags: [['org', orgOf(j)]], limit: 50 };
    });
    const byOrg = await measure(client, broker, (i) => ({ tags: [['org', orgOf(i)]], limit: 50 }));
    results.push({ size: count, users, writeSeconds, byUser, byUserAndOrg, byOrg });
  }

  console.log(
    `\nFiltered listing against all connections (${PER_USER} connections per end user, ${ORGS} organisations as tag \`org\`; median of ${LISTINGS} listings, limit 50)\n`,
  );
  console.log(
    '| connections | end users | end_user_id: ms (p95) | commands | rows | end_user_id + tag: ms (p95) | commands | rows | tag (first page): ms (p95) | commands | rows |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const cell = (m) =>
    `${m.ms.toFixed(2)} (${m.p95.toFixed(2)}) | ${m.commands.toFixed(1)} | ${m.rows.toFixed(1)}`;
  for (const r of results)
    console.log(
      `| ${r.size.toLocaleString('en')} | ${r.users.toLocaleString('en')} | ${cell(r.byUser)} | ${cell(r.byUserAndOrg)} | ${cell(r.byOrg)} |`,
    );
  const [small, large] = results;
  console.log(
    `\nratio ${large.size}/${small.size} connections, one end user's listing: time ×${(large.byUser.ms / small.byUser.ms).toFixed(2)}, Redis commands ×${(large.byUser.commands / small.byUser.commands).toFixed(2)}`,
  );
  console.log(
    `one end user's listing ran, per listing: ${JSON.stringify(Object.fromEntries(Object.entries(large.byUser.calls).map(([k, v]) => [k, v / LISTINGS])))}` +
      ' (commandstats also counts the HMGET and GET each record read runs inside its EVALSHA)',
  );
  console.log(
    `\nRedis memory per connection (used_memory delta over ${MEMORY_SAMPLE.toLocaleString('en')} connections): ` +
      `${plainBytes.toFixed(0)} B without an owner, ${ownedBytes.toFixed(0)} B with an end user and one tag ` +
      `(+${(ownedBytes - plainBytes).toFixed(0)} B: the two hash fields and an entry in each of two owner indexes)`,
  );

  broker.redis.disconnect();
  await redis.proc.stop();
  process.exit(0);
}

main();
