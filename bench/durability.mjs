// What `appendfsync always` costs on the paths that write (docs/redis-topologies.md): the same
// broker (node dist/main.js) against a redis-server with AOF `everysec`, then `always`, its AOF
// on this machine's disk. Per setting: imports (PUT: the record write a connect's callback makes),
// and forced refreshes against a provider that answers at once (the refresh path's write), each
// one at a time and 16 at once. Short on purpose (a few seconds per setting).
// Usage: npm run build && node bench/durability.mjs [--dir=/path/on/the/disk/to/measure]
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  drive,
  freePort,
  installCleanup,
  makeAgent,
  percentile,
  request,
  startBrokerProcess,
  startChild,
  startRedis,
  tempDir,
  waitUntil,
} from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const DIST = join(ROOT, 'dist');
const PROVIDER = 'bexio';
const dirArg = process.argv.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
const SEQUENTIAL = 200;
const CONCURRENT_MS = 3000;
const CONCURRENCY = 16;

installCleanup(180_000);
if (!existsSync(join(DIST, 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
const agent = makeAgent(64);
const KEY = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${KEY}` };
const env = (extra) => ({ PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', ...extra });

/** redis-server with the append-only file on, fsync'd as `fsync` says, on this machine's disk (or --dir). */
function startDurableRedis(fsync) {
  return startRedis({
    persistence: ['--appendonly', 'yes', '--appendfsync', fsync],
    dir: dirArg ? tempDirUnder(dirArg) : tempDir('ob-durability-'),
  });
}

function tempDirUnder(base) {
  const dir = join(base, `ob-durability-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startFake() {
  const port = await freePort();
  const proc = startChild('fake-provider', process.execPath, [join(HERE, 'fake-provider.mjs')], {
    env: env({ PORT: String(port) }),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'fake provider',
    async () => (await request(agent, `${url}/_stats`)).status === 200,
    5000,
    proc,
  );
  return { url, proc };
}

async function startBroker(redisUrl, fakeUrl) {
  const p = PROVIDER.toUpperCase();
  const proc = await startBrokerProcess({
    name: 'broker',
    dist: DIST,
    redisUrl,
    env: {
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      INTERNAL_API_KEYS: KEY,
      ALLOWED_RETURN_URLS: 'https://app.example.com/integrations',
      [`${p}_CLIENT_ID`]: 'bench-client',
      [`${p}_CLIENT_SECRET`]: 'bench-client-secret',
      [`${p}_AUTHORIZATION_URL`]: `${fakeUrl}/authorize`,
      [`${p}_TOKEN_URL`]: `${fakeUrl}/token`,
    },
    agent,
    cwdPrefix: 'ob-durability-cwd-',
  });
  return { internalUrl: proc.internalUrl, proc };
}

function summary(run) {
  return {
    done: run.done,
    failed: run.failed,
    per_s: Math.round(run.rate),
    p50_ms: Number(percentile(run.latencies, 0.5).toFixed(2)),
    p99_ms: Number(percentile(run.latencies, 0.99).toFixed(2)),
  };
}

async function measure(fsync, fake) {
  const redis = await startDurableRedis(fsync);
  const broker = await startBroker(redis.url, fake.url);
  const put = (id) => async () => {
    const res = await request(agent, `${broker.internalUrl}/internal/connections/${PROVIDER}/${id}`, {
      method: 'PUT',
      headers: AUTH,
      body: {
        access_token: randomBytes(90).toString('base64url'),
        refresh_token: randomBytes(48).toString('base64url'),
        expires_in: 3600,
      },
    });
    if (res.status !== 200 && res.status !== 201) throw new Error(`PUT answered ${res.status}`);
  };
  const refresh = (id) => async () => {
    const res = await request(
      agent,
      `${broker.internalUrl}/internal/connections/${PROVIDER}/${id}/token?force_refresh=true`,
      { headers: AUTH },
    );
    if (res.status !== 200) throw new Error(`refresh answered ${res.status}`);
  };
  // Warm both paths (JIT, sockets) before measuring.
  await drive({ concurrency: 4, count: 100, work: (i) => put(`warm-${i}`)() });
  await drive({ concurrency: 4, count: 100, work: (i) => refresh(`warm-${i}`)() });
  const imported = await drive({
    concurrency: CONCURRENCY,
    durationMs: CONCURRENT_MS,
    work: (i) => put(`c-${i}`)(),
  });
  const out = {
    import_sequential: summary(
      await drive({ concurrency: 1, count: SEQUENTIAL, work: (i) => put(`s-${i}`)() }),
    ),
    import_concurrent: summary(imported),
    refresh_sequential: summary(
      await drive({ concurrency: 1, count: SEQUENTIAL, work: (i) => refresh(`s-${i}`)() }),
    ),
    refresh_concurrent: summary(
      await drive({
        concurrency: CONCURRENCY,
        durationMs: CONCURRENT_MS,
        work: (i) => refresh(`c-${i % imported.done}`)(),
      }),
    ),
  };
  await broker.proc.stop();
  redis.client.disconnect();
  await redis.proc.stop();
  return out;
}

const fake = await startFake();
const results = {};
for (const fsync of ['everysec', 'always']) {
  console.log(`durability bench: appendfsync ${fsync}`);
  results[fsync] = await measure(fsync, fake);
}
await fake.proc.stop();
console.log(JSON.stringify(results, null, 2));
process.exit(0);
