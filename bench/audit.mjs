// The token API with the audit log on beside itself with the audit log off, in the same run: two
// brokers of one build on one private Redis (prefixes `off:` and `on:`), loaded in alternating
// short slices so both see the same machine. Both read tokens with the same scoped service key
// (SERVICE_KEYS_FILE), so the one difference is AUDIT: every 200 of B writes its entry (XADD to a
// shard stream) before the token leaves. Reports CPU per request, req/s and latency: paced at
// --rate req/s (open loop, latency from each request's intended start), then the maximum with 50
// closed-loop clients. Targets (docs/least-privilege.md): B at least 0.85 of A's throughput, and
// at most +1 ms p99 at the fixed rate.
//
//   npm run build && node bench/audit.mjs [--slices=6] [--rate=600] [--seconds=1] [--write]
//
// --write puts the figures in bench/results.md, in the section between the audit.mjs markers
// (bench/run.mjs keeps that section when it rewrites the file).
import autocannon from 'autocannon';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuSeconds,
  drive,
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

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const opt = (name, fallback) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const DIST = resolve(ROOT, opt('dist', 'dist'));
const SLICES = Number(opt('slices', 10));
const RATE = Number(opt('rate', 600));
const SLICE_MS = Number(opt('seconds', 1)) * 1000;
const CLIENTS = 50;
if (!existsSync(join(DIST, 'main.js'))) {
  console.error('usage: npm run build && node bench/audit.mjs [--slices=6] [--rate=600] [--seconds=1]');
  process.exit(2);
}
installCleanup(300_000);

const KEY = randomBytes(32).toString('base64url');
const SERVICE_KEY = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${SERVICE_KEY}` };
const ADMIN = { authorization: `Bearer ${KEY}` };
const SERVICE_KEYS_FILE = join(tempDir('ob-audit-keys-'), 'service-keys.json');
writeFileSync(
  SERVICE_KEYS_FILE,
  JSON.stringify({
    services: [
      {
        name: 'bench',
        key_sha256: [createHash('sha256').update(SERVICE_KEY).digest('hex')],
        providers: ['bexio'],
        actions: ['token'],
      },
    ],
  }),
);
const ENC = `bench:${randomBytes(32).toString('base64')}`;
const SESSION = randomBytes(32).toString('base64url');
const agent = makeAgent(64);

async function startBroker(name, dist, redisUrl, extra) {
  const port = await freePort();
  const internalPort = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(internalPort),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    REDIS_URL: redisUrl,
    SESSION_SECRET: SESSION,
    TOKEN_ENCRYPTION_KEYS: ENC,
    INTERNAL_API_KEYS: KEY,
    ALLOWED_RETURN_URLS: 'https://app.example.com',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    BEXIO_CLIENT_ID: 'bench-client',
    BEXIO_CLIENT_SECRET: 'bench-client-secret',
    BEXIO_TOKEN_URL: 'http://127.0.0.1:9/token',
    BEXIO_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
    SERVICE_KEYS_FILE,
    ...extra,
  };
  const proc = startChild(name, process.execPath, [join(dist, 'main.js')], {
    env,
    cwd: tempDir('ob-audit-cwd-'),
  });
  const url = `http://127.0.0.1:${internalPort}`;
  await waitUntil(
    `${name}`,
    async () => (await request(agent, `${url}/readyz`)).status === 200,
    20_000,
    proc,
  );
  return { ...proc, url };
}

/** One slice on `target`: paced open loop at `rate` req/s, or closed loop (CLIENTS clients) without. */
async function slice(target, ids, rate) {
  const tokenPath = () => `/internal/connections/bexio/${ids[Math.floor(Math.random() * ids.length)]}/token`;
  const cpu0 = cpuSeconds(target.pid);
  if (rate) {
    const r = await paced({ url: target.url, rate, durationMs: SLICE_MS, headers: AUTH, pathFor: tokenPath });
    const bad = r.sent - r.samples.length;
    if (bad > 0 || r.errors > 0)
      throw new Error(
        `${target.name}: ${JSON.stringify(r.statuses)}, ${r.errors} errors (paced at ${rate} req/s)`,
      );
    return {
      samples: r.samples,
      seconds: r.seconds,
      cpu: cpuSeconds(target.pid) - cpu0,
      sent: r.sent,
      late: r.late,
      lagP50: r.lagP50,
    };
  }
  const samples = [];
  let bad = 0;
  const instance = autocannon({
    url: target.url,
    connections: CLIENTS,
    duration: SLICE_MS / 1000,
    headers: AUTH,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          req.path = tokenPath();
          return req;
        },
      },
    ],
  });
  instance.on('response', (_c, status, _b, ms) => (status === 200 ? samples.push(ms) : bad++));
  const result = await instance;
  if (bad > 0 || result.errors > 0)
    throw new Error(`${target.name}: ${bad} non-200, ${result.errors} errors`);
  return { samples, seconds: result.duration, cpu: cpuSeconds(target.pid) - cpu0 };
}

async function compare(targets, ids, rate) {
  const acc = targets.map(() => ({
    samples: [],
    seconds: 0,
    cpu: 0,
    sent: 0,
    late: 0,
    lagP50: [],
    slices: [],
  }));
  for (let i = 0; i < SLICES; i++) {
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const k of order) {
      const r = await slice(targets[k], ids, rate);
      acc[k].slices.push({ rps: r.samples.length / r.seconds, cpuUs: (r.cpu / r.samples.length) * 1e6 });
      acc[k].samples.push(...r.samples);
      acc[k].seconds += r.seconds;
      acc[k].cpu += r.cpu;
      if (rate) {
        acc[k].sent += r.sent;
        acc[k].late += r.late;
        acc[k].lagP50.push(r.lagP50);
      }
    }
  }
  // Per pair of neighbouring slices, B against A: the median of those ratios is steadier than the
  // ratio of the totals when the machine's load changes during the run (a shared machine).
  const pairs = acc[0].slices.map((x, i) => ({
    rps: acc[1].slices[i].rps / x.rps,
    cpu: acc[1].slices[i].cpuUs / x.cpuUs,
  }));
  const pairMedian = {
    rps: percentile(
      pairs.map((p) => p.rps),
      0.5,
    ),
    cpu: percentile(
      pairs.map((p) => p.cpu),
      0.5,
    ),
  };
  return acc.map((a) => ({
    pairMedian,
    rps: a.samples.length / a.seconds,
    p50: percentile(a.samples, 0.5),
    p99: percentile(a.samples, 0.99),
    cpuUs: (a.cpu / a.samples.length) * 1e6,
    lateShare: rate ? a.late / a.sent : NaN,
    lagP50: rate ? percentile(a.lagP50, 0.5) : NaN,
  }));
}

const redis = await startRedis();
const a = await startBroker('A', DIST, redis.url, { AUDIT: 'off', REDIS_KEY_PREFIX: 'off:' });
const b = await startBroker('B', DIST, redis.url, { AUDIT: 'on', REDIS_KEY_PREFIX: 'on:' });
const ids = Array.from({ length: 1000 }, (_, i) => `au-${i}`);
const put = await drive({
  concurrency: 20,
  count: ids.length * 2,
  work: async (i) => {
    const target = i < ids.length ? a : b;
    const res = await request(agent, `${target.url}/internal/connections/bexio/${ids[i % ids.length]}`, {
      method: 'PUT',
      headers: ADMIN,
      body: {
        access_token: randomBytes(90).toString('base64url'),
        refresh_token: randomBytes(48).toString('base64url'),
        expires_in: 86400,
        scopes: ['openid', 'offline_access', 'accounting'],
      },
    });
    if (res.status !== 201) throw new Error(`PUT ${res.status}`);
  },
});
if (put.failed) throw put.failures[0];
// Warm both (JIT, first reads mark refresh-ahead candidates).
for (const t of [a, b]) await slice(t, ids, undefined);

const fmt = (label, [x, y]) =>
  console.log(
    `${label.padEnd(22)} A ${x.cpuUs.toFixed(0).padStart(4)} µs/req ${x.rps.toFixed(0).padStart(5)} req/s p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} | ` +
      `B ${y.cpuUs.toFixed(0).padStart(4)} µs/req ${y.rps.toFixed(0).padStart(5)} req/s p50 ${y.p50.toFixed(2)} p99 ${y.p99.toFixed(2)} | ` +
      `B/A cpu ${(y.cpuUs / x.cpuUs).toFixed(3)} rps ${(y.rps / x.rps).toFixed(3)} (median of slice pairs: cpu ${y.pairMedian.cpu.toFixed(3)} rps ${y.pairMedian.rps.toFixed(3)})`,
  );
const load0 = loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');
const started = Date.now();
console.log(
  `A = AUDIT=off, B = AUDIT=on (${DIST}), both with a scoped service key\n${SLICES} alternating slices of ${SLICE_MS / 1000} s each`,
);
const fixed = await compare([a, b], ids, RATE);
fmt(`paced ${RATE} req/s`, fixed);
const late = Math.max(...fixed.map((x) => x.lateShare));
console.log(
  `${''.padEnd(22)} paced: open loop, evenly spaced, latency from the intended start (includes the generator's timer lag, median ${Math.max(...fixed.map((x) => x.lagP50)).toFixed(2)} ms); ` +
    `${(late * 100).toFixed(1)} % issued > 5 ms late${late > 0.05 ? ': GENERATOR BEHIND, these latencies are not to be trusted' : ''}`,
);
const max = await compare([a, b], ids, undefined);
fmt(`max, ${CLIENTS} clients`, max);
let entries = 0;
for (let shard = 0; shard < 16; shard++) entries += await redis.client.xlen(`on:{audit:${shard}}`);
console.log(
  `audit entries written by B: ${entries}; by A: ${(await redis.client.keys('off:{audit:*')).length} streams`,
);
if (process.argv.includes('--write')) {
  const ms = (x) => `${x.toFixed(2)} ms`;
  const verdict = (ok) => (ok ? 'PASS' : 'MISS');
  const [fa, fb] = fixed;
  const [ma, mb] = max;
  const section = [
    '<!-- audit.mjs -->',
    '## Audit log on vs off (bench/audit.mjs)',
    '',
    `The token API of one build, \`AUDIT=on\` (B) beside \`AUDIT=off\` (A), both reading with a scoped service key, ${SLICES} alternating slices of ${SLICE_MS / 1000} s on one private Redis. ` +
      `${new Date().toISOString()}, load average before ${load0}, after ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s. ` +
      `Audit entries written by B: ${entries}.`,
    '',
    '| measure | AUDIT=on | AUDIT=off | ratio / delta | target | verdict |',
    '|---|---|---|---|---|---|',
    `| req/s at ${CLIENTS} clients | ${mb.rps.toFixed(0)} | ${ma.rps.toFixed(0)} | ${(mb.rps / ma.rps).toFixed(3)} | ≥ 0.85 | ${verdict(mb.rps / ma.rps >= 0.85)} |`,
    `| … median of the ${SLICES} slice pairs' req/s ratios | | | ${mb.pairMedian.rps.toFixed(3)} | ≥ 0.85 | ${verdict(mb.pairMedian.rps >= 0.85)} |`,
    `| CPU per request at ${CLIENTS} clients | ${mb.cpuUs.toFixed(0)} µs | ${ma.cpuUs.toFixed(0)} µs | ${(mb.cpuUs / ma.cpuUs).toFixed(3)} (pairs' median ${mb.pairMedian.cpu.toFixed(3)}) |  |  |`,
    `| p99 paced at ${RATE} req/s | ${ms(fb.p99)} | ${ms(fa.p99)} | ${fb.p99 - fa.p99 >= 0 ? '+' : ''}${ms(fb.p99 - fa.p99)} | ≤ +1 ms | ${verdict(fb.p99 - fa.p99 <= 1)}${late > 0.05 ? ' (generator behind: not to be trusted)' : ''} |`,
    `| p50 paced at ${RATE} req/s | ${ms(fb.p50)} | ${ms(fa.p50)} | ${fb.p50 - fa.p50 >= 0 ? '+' : ''}${ms(fb.p50 - fa.p50)} |  |  |`,
    `| CPU per request paced | ${fb.cpuUs.toFixed(0)} µs | ${fa.cpuUs.toFixed(0)} µs | ${(fb.cpuUs / fa.cpuUs).toFixed(3)} |  |  |`,
    '<!-- /audit.mjs -->',
  ].join('\n');
  const file = join(ROOT, 'bench', 'results.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const marked = /<!-- audit\.mjs -->[\s\S]*<!-- \/audit\.mjs -->/;
  writeFileSync(
    file,
    marked.test(text) ? text.replace(marked, section) : `${text.trimEnd()}\n\n${section}\n`,
  );
  console.log('written: bench/results.md (audit section)');
}
redis.client.disconnect();
agent.destroy();
process.exit(0);
