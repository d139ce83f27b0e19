// Before/after on the proxied GET: two builds of the broker side by side on one private Redis and
// one fake provider API (bench/proxy.mjs --serve-upstream, its own process), loaded in alternating
// paced slices (open loop, latency from each request's intended start: `paced` in lib.mjs) with the
// same GET straight to the fake API as the floor. Reports each broker's CPU per proxied request
// (process user+sys ÷ requests: the steadiest figure on a shared machine), p50/p99 and the overhead
// over the direct GET measured in the same run.
//
//   node bench/proxy-ab.mjs --a=/path/to/old/dist [--b=dist] [--slices=8] [--rate=300] [--seconds=2] [--profile]
//
// --profile runs B under --cpu-prof (bench/profiles/; bench/profile-summary.mjs reads it).
// Make an "old" build as bench/ab.mjs says.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeApi } from './proxy.mjs';
import {
  cpuSeconds,
  freePort,
  installCleanup,
  makeAgent,
  paced,
  percentile,
  request,
  startChild,
  startRedis,
  tempDir,
  waitUntil,
} from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const opt = (name, fallback) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const DIST_A = opt('a');
const DIST_B = resolve(ROOT, opt('b', 'dist'));
const SLICES = Number(opt('slices', 8));
const RATE = Number(opt('rate', 300));
const SLICE_MS = Number(opt('seconds', 2)) * 1000;
const PROFILE = process.argv.includes('--profile');
if (!DIST_A || !existsSync(join(DIST_A, 'main.js')) || !existsSync(join(DIST_B, 'main.js'))) {
  console.error('usage: node bench/proxy-ab.mjs --a=<old dist dir> [--b=dist]  (each must hold main.js)');
  process.exit(2);
}
installCleanup(300_000);

const agent = makeAgent(8);
const key = randomBytes(32).toString('base64url');
const auth = { authorization: `Bearer ${key}` };
const shared = {
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  INTERNAL_API_KEYS: key,
};
// As deployed: the Dockerfile's NODE_OPTIONS (as bench/proxy.mjs).
const NODE_OPTIONS =
  /NODE_OPTIONS=(?:"([^"]*)"|(\S+))/
    .exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
    ?.slice(1)
    .find(Boolean) ?? '';

const redis = await startRedis();
const upstream = await startFakeApi(agent);
const upstreamUrl = upstream.url;

async function startBroker(name, dist, profile) {
  const internalPort = await freePort();
  const port = await freePort();
  const flags = profile ? ['--cpu-prof', '--cpu-prof-dir', join(HERE, 'profiles')] : [];
  const proc = startChild(name, process.execPath, [...flags, join(dist, 'main.js')], {
    cwd: tempDir('ob-proxy-ab-'),
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      INTERNAL_HOST: '127.0.0.1',
      INTERNAL_PORT: String(internalPort),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      REDIS_URL: redis.url,
      ...shared,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
      BEXIO_CLIENT_ID: 'bench',
      BEXIO_CLIENT_SECRET: 'bench-secret',
      BEXIO_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
      BEXIO_TOKEN_URL: 'http://127.0.0.1:9/token',
      BEXIO_API_BASE_URL: `${upstreamUrl}/api`,
    },
  });
  const url = `http://127.0.0.1:${internalPort}`;
  await waitUntil(name, async () => (await request(agent, `${url}/readyz`)).status === 200, 20_000, proc);
  return { ...proc, url };
}

const a = await startBroker('A', resolve(DIST_A), false);
const b = await startBroker('B', DIST_B, PROFILE);
// One connection, in the Redis both brokers share.
const put = await request(agent, `${a.url}/internal/connections/bexio/bench-1`, {
  method: 'PUT',
  headers: auth,
  body: { access_token: randomBytes(90).toString('base64url'), refresh_token: 'rt', expires_in: 86_400 },
});
if (put.status !== 201) throw new Error(`import answered ${put.status}: ${put.body}`);

const arms = {
  direct: { url: upstreamUrl, headers: {}, path: '/api/small', pid: undefined },
  A: { url: a.url, headers: auth, path: '/internal/proxy/bexio/bench-1/small', pid: a.pid },
  B: { url: b.url, headers: auth, path: '/internal/proxy/bexio/bench-1/small', pid: b.pid },
};
const acc = Object.fromEntries(
  Object.keys(arms).map((k) => [k, { samples: [], cpu: 0, sent: 0, late: 0, failed: 0, slices: [] }]),
);

async function slice(name, rate, durationMs) {
  const arm = arms[name];
  const cpu0 = arm.pid ? cpuSeconds(arm.pid) : 0;
  const r = await paced({ url: arm.url, rate, durationMs, headers: arm.headers, pathFor: () => arm.path });
  const cpu = arm.pid ? cpuSeconds(arm.pid) - cpu0 : 0;
  // A failed request is counted and shown, not fatal: a loaded machine may time one out.
  return { ...r, cpu, failed: r.sent - r.samples.length };
}

// Warm-up: JIT, keep-alive pools.
for (const name of Object.keys(arms)) await slice(name, 200, 1500);

for (let i = 0; i < SLICES; i++) {
  const order = i % 2 === 0 ? ['direct', 'A', 'B'] : ['B', 'A', 'direct'];
  for (const name of order) {
    const r = await slice(name, RATE, SLICE_MS);
    const x = acc[name];
    x.samples.push(...r.samples);
    x.cpu += r.cpu;
    x.sent += r.sent;
    x.late += r.late;
    x.failed += r.failed;
    x.slices.push({ cpuUs: (r.cpu / r.sent) * 1e6, p99: percentile(r.samples, 0.99) });
  }
}

const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const q = (name, p) => percentile(acc[name].samples, p);
console.log(
  `paced ${RATE} req/s, ${SLICES} slices of ${SLICE_MS / 1000} s per arm, alternating; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
);
for (const name of Object.keys(arms)) {
  const x = acc[name];
  const cpu = x.sent ? (x.cpu / x.sent) * 1e6 : NaN;
  const over =
    name === 'direct'
      ? ''
      : ` (overhead p50 ${f(q(name, 0.5) - q('direct', 0.5))} ms, p99 ${f(q(name, 0.99) - q('direct', 0.99))} ms)`;
  console.log(
    `${name.padEnd(6)} p50 ${f(q(name, 0.5))} ms p99 ${f(q(name, 0.99))} ms${over}` +
      (arms[name].pid
        ? `, broker CPU ${f(cpu, 0)} µs/req (slice median ${f(
            percentile(
              x.slices.map((s) => s.cpuUs),
              0.5,
            ),
            0,
          )})`
        : '') +
      `, ${x.late} of ${x.sent} issued > 5 ms late, ${x.failed} not 2xx`,
  );
}
const ratios = acc.A.slices.map((s, i) => acc.B.slices[i].cpuUs / s.cpuUs);
console.log(
  `B/A CPU per request: ${f(acc.B.cpu / acc.A.cpu, 3)} (median of slice pairs ${f(percentile(ratios, 0.5), 3)})`,
);

await a.stop();
await b.stop();
await upstream.stop();
redis.client.disconnect();
await redis.proc.stop();
agent.destroy();
process.exit(0);
