// Online key rotation under load (issue 11): 10,000 connections sealed under k1; a real broker
// process (`node dist/main.js`) with TOKEN_ENCRYPTION_KEYS="k2:…,k1:…" serves the token API to
// several clients while `node dist/cli/main.js keys rekey` runs beside it. Reports failed reads
// (must be 0), forced refreshes that failed (must be 0), the rekey's rate, and whether every
// token still opens once k1 is gone. Not part of `npm test`; needs `npm run build`.
//
//   node bench/rekey-under-load.mjs [--connections=10000] [--clients=32]
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  installCleanup,
  makeAgent,
  percentile,
  request,
  sleep,
  startChild,
  startRedis,
  waitUntil,
} from './lib.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
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
const CONNECTIONS = arg('connections', 10_000);
const CLIENTS = arg('clients', 32);
const PROVIDER = 'bonjoro';
const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const INTERNAL_KEY = 'bench-internal-key-0123456789abcdef';

installCleanup(15 * 60_000);

/** A token endpoint that takes any refresh token and answers at once. */
async function startTokenEndpoint() {
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: `at-new-${n}`,
          refresh_token: `rt-new-${n}`,
          token_type: 'bearer',
          expires_in: 3600,
        }),
      );
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

function envFor(redisUrl, tokenUrl, ring, extra = {}) {
  return {
    PATH: process.env.PATH,
    PUBLIC_URL: 'http://127.0.0.1:9',
    SESSION_SECRET: 'a-session-secret-that-is-long-enough-0123456789',
    TOKEN_ENCRYPTION_KEYS: ring,
    INTERNAL_API_KEYS: INTERNAL_KEY,
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    BONJORO_CLIENT_ID: 'bench-client',
    BONJORO_CLIENT_SECRET: 'bench-secret',
    BONJORO_AUTHORIZATION_URL: `${tokenUrl}/authorize`,
    BONJORO_TOKEN_URL: `${tokenUrl}/token`,
    ...extra,
  };
}

function inProcessBroker(env) {
  const config = loadConfig({ ...env, LOG_LEVEL: 'silent' });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return createBroker(config, { logger: createLogger('silent', sink) });
}

const idOf = (i) => `acct-${i}`;

async function seed(broker) {
  const provider = broker.registry.get(PROVIDER);
  for (let i = 0; i < CONNECTIONS; i += 500) {
    const jobs = [];
    for (let j = i; j < Math.min(CONNECTIONS, i + 500); j++) {
      jobs.push(
        broker.connections.saveTokens(
          provider,
          idOf(j),
          {
            access_token: `at-${j}`,
            refresh_token: `rt-${j}`,
            token_type: 'Bearer',
            expires_at: Date.now() + 3_600_000,
          },
          [],
        ),
      );
    }
    await Promise.all(jobs);
  }
}

/** Runs a CLI command to its end; answers its exit code, output and wall time. */
async function runCli(args, env) {
  const t0 = performance.now();
  const proc = startChild(
    `cli ${args.join(' ')}`,
    process.execPath,
    [join(ROOT, 'dist/cli/main.js'), ...args],
    { env, cwd: '/' },
  );
  const { code } = await proc.exited;
  return { code, output: proc.output(), seconds: (performance.now() - t0) / 1000 };
}

async function main() {
  const redis = await startRedis();
  const endpoint = await startTokenEndpoint();

  const seeder = inProcessBroker(envFor(redis.url, endpoint.url, K1));
  await waitForReady(seeder.redis, 5000);
  const t0 = performance.now();
  await seed(seeder);
  seeder.redis.disconnect();
  console.error(
    `bench: ${CONNECTIONS} connections sealed under k1 in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const port = await freePort();
  const internalPort = await freePort();
  const env = envFor(redis.url, endpoint.url, `${K2},${K1}`, {
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(internalPort),
  });
  const broker = startChild('broker', process.execPath, [join(ROOT, 'dist/main.js')], { env, cwd: '/' });
  const base = `http://127.0.0.1:${internalPort}`;
  await waitUntil('broker', async () => (await fetch(`${base}/readyz`)).status === 200, 15_000, broker);

  // The load: CLIENTS loops of token reads on random connections, one loop of forced refreshes.
  const agent = makeAgent(CLIENTS + 2);
  const headers = { authorization: `Bearer ${INTERNAL_KEY}` };
  let phase = 'before';
  let stop = false;
  const reads = { before: [], during: [], after: [] };
  const failures = [];
  let forced = 0;
  let forcedDuring = 0;
  const reader = async () => {
    while (!stop) {
      const id = idOf(Math.floor(Math.random() * CONNECTIONS));
      const at = phase;
      const t = performance.now();
      try {
        const res = await request(agent, `${base}/internal/connections/${PROVIDER}/${id}/token`, { headers });
        if (res.status !== 200) failures.push(`read ${id}: ${res.status} ${res.body.slice(0, 200)}`);
      } catch (error) {
        failures.push(`read ${id}: ${error.message}`);
      }
      reads[at].push(performance.now() - t);
    }
  };
  const refresher = async () => {
    for (let i = 0; !stop; i = (i + 7) % CONNECTIONS) {
      try {
        const res = await request(
          agent,
          `${base}/internal/connections/${PROVIDER}/${idOf(i)}/token?force_refresh=true`,
          { headers },
        );
        if (res.status !== 200) failures.push(`force ${idOf(i)}: ${res.status} ${res.body.slice(0, 200)}`);
        forced += 1;
        if (phase === 'during') forcedDuring += 1;
      } catch (error) {
        failures.push(`force ${idOf(i)}: ${error.message}`);
      }
    }
  };
  const load = Promise.all([...Array.from({ length: CLIENTS }, reader), refresher()]);
  await sleep(3000);

  phase = 'during';
  const rekey = await runCli(['keys', 'rekey'], env);
  phase = 'after';
  await sleep(2000);
  stop = true;
  await load;

  const status = await runCli(['keys', 'status'], env);
  await broker.stop();

  // k1 leaves the ring: every token must still open.
  const withoutK1 = inProcessBroker(envFor(redis.url, endpoint.url, K2));
  await waitForReady(withoutK1.redis, 5000);
  const provider = withoutK1.registry.get(PROVIDER);
  let unreadable = 0;
  for (let i = 0; i < CONNECTIONS; i += 500) {
    const answers = await Promise.allSettled(
      Array.from({ length: Math.min(500, CONNECTIONS - i) }, (_, j) =>
        withoutK1.connections.getToken(provider, idOf(i + j), { minValiditySeconds: 0, forceRefresh: false }),
      ),
    );
    unreadable += answers.filter((a) => a.status === 'rejected').length;
  }
  withoutK1.redis.disconnect();

  const summary = /connections: .*/.exec(rekey.output)?.[0] ?? '(no summary)';
  const resealed = Number(/resealed: (\d+)/.exec(summary)?.[1] ?? NaN);
  const row = (name) => {
    const v = reads[name];
    return `| ${name} | ${v.length} | ${percentile(v, 0.5).toFixed(1)} | ${percentile(v, 0.99).toFixed(1)} |`;
  };
  console.log(
    `\nRekey of ${CONNECTIONS.toLocaleString('en')} connections (k1 → k2) while ${CLIENTS} clients read tokens and one forces refreshes\n`,
  );
  console.log(
    `- rekey: exit ${rekey.code}, ${rekey.seconds.toFixed(2)} s wall (CLI start to exit), ${summary}`,
  );
  console.log(
    `- rekey rate: ${(resealed / rekey.seconds).toFixed(0)} connections/s re-sealed (wall time, including the CLI's start and its listing passes)`,
  );
  console.log(
    `- failed reads: ${failures.filter((f) => f.startsWith('read')).length} of ${reads.before.length + reads.during.length + reads.after.length}`,
  );
  console.log(
    `- forced refreshes: ${forced} (${forcedDuring} during the rekey), failed: ${failures.filter((f) => f.startsWith('force')).length}`,
  );
  console.log(`- keys status afterwards: ${status.output.trim().split('\n').join(', ')}`);
  console.log(
    `- with k1 removed from the ring: ${CONNECTIONS - unreadable} of ${CONNECTIONS} tokens open (${unreadable} fail)`,
  );
  console.log('\n| phase | reads | p50 ms | p99 ms |\n|---|---:|---:|---:|');
  for (const name of ['before', 'during', 'after']) console.log(row(name));
  if (failures.length > 0) console.log(`\nfirst failures:\n${failures.slice(0, 5).join('\n')}`);

  endpoint.close();
  await redis.proc.stop();
  process.exit(failures.length === 0 && unreadable === 0 && rekey.code === 0 ? 0 : 1);
}

main();
