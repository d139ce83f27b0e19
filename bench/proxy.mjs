// The proxy measured beside its floor: the same GET straight to a fake provider API and through
// the broker (`/internal/proxy/...`), at a fixed rate below saturation (paced open loop, latency
// from each request's intended start) and at saturation (autocannon, closed loop); then the
// broker's RSS while a 100 MB download and a 100 MB upload stream through it at once.
//
// `node bench/proxy.mjs [--quick]` alone (after `npm run build`), or from `npm run bench`
// (bench/scenarios/proxy.mjs imports runProxyBench). The fake API runs as its own process (this file with
// --serve-upstream), so neither it nor the load generator shares the broker's process.
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL, fileURLToPath } from 'node:url';
import {
  cpuSeconds,
  dockerfileNodeOptions,
  freePort,
  installCleanup,
  makeAgent,
  paced,
  percentile,
  request,
  rssMiB,
  rssSampler,
  startBrokerProcess,
  startChild,
  startRedis,
  waitUntil,
} from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const SMALL_BODY = JSON.stringify({
  items: Array.from({ length: 4 }, (_, i) => ({ id: i, name: `item-${i}` })),
});
// PROXY_BENCH_MB: the size of each streamed body (default 100), e.g. to see that the peak does not grow with it.
const BIG_MB = Number(process.env.PROXY_BENCH_MB ?? 100);
const BIG_BYTES = BIG_MB * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** The fake provider API: GET /small (a small JSON), GET /big (100 MB, chunked), POST /sink (counts). */
function serveUpstream(port) {
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/api/small')) {
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(SMALL_BODY),
      });
      return res.end(SMALL_BODY);
    }
    if (req.url.startsWith('/api/big')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      let sent = 0;
      const pump = () => {
        while (sent < BIG_BYTES) {
          sent += CHUNK.length;
          if (!res.write(CHUNK)) return res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (req.url.startsWith('/api/sink')) {
      let bytes = 0;
      req.on('data', (c) => (bytes += c.length));
      req.on('end', () => res.end(JSON.stringify({ bytes })));
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 10_000;
  server.listen(port, '127.0.0.1');
}

/** Runs the scenario; answers its figures and prints a short table through `log`. */
export async function runProxyBench({ quick = false, log = (l) => console.log(`bench proxy: ${l}`) } = {}) {
  const dist = join(ROOT, 'dist', 'main.js');
  if (!existsSync(dist)) throw new Error('dist/main.js is missing: run `npm run build` first');
  const T = quick ? { slice: 1500, slices: 2, sat: 2000 } : { slice: 3000, slices: 4, sat: 5000 };
  const WARM_RATE = 200;
  const agent = makeAgent(64);
  const key = randomBytes(32).toString('base64url');
  const auth = { authorization: `Bearer ${key}` };

  const redis = await startRedis();
  const upstream = await startFakeApi(agent);
  const upstreamUrl = upstream.url;

  // --profile: the broker runs under --cpu-prof (bench/profiles/); bench/profile-summary.mjs reads it.
  const profile = process.argv.includes('--profile')
    ? ['--cpu-prof', '--cpu-prof-dir', join(HERE, 'profiles')]
    : [];
  const broker = await startBrokerProcess({
    name: 'broker',
    dist: dirname(dist),
    redisUrl: redis.url,
    env: {
      // As deployed: the Dockerfile's NODE_OPTIONS (bench/run.mjs runs its brokers the same way).
      NODE_OPTIONS: dockerfileNodeOptions(ROOT) ?? '',
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      INTERNAL_API_KEYS: key,
      BEXIO_CLIENT_ID: 'bench',
      BEXIO_CLIENT_SECRET: 'bench-secret',
      BEXIO_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
      BEXIO_TOKEN_URL: 'http://127.0.0.1:9/token',
      BEXIO_API_BASE_URL: `${upstreamUrl}/api`,
    },
    agent,
    nodeArgs: profile,
    cwdPrefix: 'ob-bench-proxy-',
  });
  const { internalUrl } = broker;
  const put = await request(agent, `${internalUrl}/internal/connections/bexio/bench-1`, {
    method: 'PUT',
    headers: auth,
    body: { access_token: randomBytes(90).toString('base64url'), refresh_token: 'rt', expires_in: 86_400 },
  });
  if (put.status !== 201) throw new Error(`import answered ${put.status}: ${put.body}`);
  const idleRss = rssMiB(broker.pid);

  const targets = {
    direct: { url: upstreamUrl, headers: {}, path: '/api/small' },
    proxy: { url: internalUrl, headers: auth, path: '/internal/proxy/bexio/bench-1/small' },
    // A reference for the broker's CPU: the token API for the same connection (fixed rate only).
    token: { url: internalUrl, headers: auth, path: '/internal/connections/bexio/bench-1/token' },
  };
  // Warm-up: JIT, keep-alive pools.
  for (const t of Object.values(targets))
    await paced({ url: t.url, rate: WARM_RATE, durationMs: 1000, headers: t.headers, pathFor: () => t.path });

  // Saturation: closed loop, 50 clients.
  const saturation = {};
  for (const name of ['direct', 'proxy']) {
    const t = targets[name];
    const samples = [];
    const instance = autocannon({
      url: `${t.url}${t.path}`,
      connections: 50,
      duration: T.sat / 1000,
      headers: t.headers,
    });
    instance.on('response', (_c, status, _b, ms) => status < 300 && samples.push(ms));
    const result = await instance;
    if (result.non2xx || result.errors)
      throw new Error(`${name} at saturation: non2xx ${result.non2xx}, errors ${result.errors}`);
    saturation[name] = {
      rps: result.requests.average,
      p50: percentile(samples, 0.5),
      p99: percentile(samples, 0.99),
    };
  }

  // Below saturation: a quarter of what the proxy answered at saturation (at least 50 req/s).
  const RATE = Math.max(50, Math.round(saturation.proxy.rps / 4));
  // Fixed rate, alternating slices so the machine's other load weighs on both alike.
  const fixed = { direct: [], proxy: [], token: [] };
  const brokerCpu = { direct: 0, proxy: 0, token: 0 };
  const sent = { direct: 0, proxy: 0, token: 0 };
  const late = { direct: 0, proxy: 0, token: 0 };
  for (let i = 0; i < T.slices; i++) {
    const order = i % 2 === 0 ? ['direct', 'proxy', 'token'] : ['token', 'proxy', 'direct'];
    for (const name of order) {
      const t = targets[name];
      const cpuBefore = cpuSeconds(broker.pid);
      const r = await paced({
        url: t.url,
        rate: RATE,
        durationMs: T.slice,
        headers: t.headers,
        pathFor: () => t.path,
      });
      brokerCpu[name] += cpuSeconds(broker.pid) - cpuBefore;
      sent[name] += r.sent;
      const bad = Object.keys(r.statuses).filter((s) => !s.startsWith('2'));
      if (bad.length || r.errors)
        throw new Error(`${name}: statuses ${JSON.stringify(r.statuses)}, errors ${r.errors}`);
      fixed[name].push(...r.samples);
      late[name] += r.late;
    }
  }

  // --no-stream: latency and CPU only (say, for a profile of the proxied GET alone).
  if (process.argv.includes('--no-stream')) {
    await broker.stop();
    await upstream.stop();
    await redis.proc.stop();
    return { saturation, cpuUs: (brokerCpu.proxy / sent.proxy) * 1e6 };
  }
  // 100 MB down and 100 MB up through the proxy at once, RSS sampled every 100 ms.
  const sampler = rssSampler(broker.pid, 100);
  const started = performance.now();
  const [down, up] = await Promise.all([
    stream(internalUrl, auth, 'GET', '/internal/proxy/bexio/bench-1/big'),
    stream(internalUrl, auth, 'POST', '/internal/proxy/bexio/bench-1/sink', BIG_BYTES),
  ]);
  const streamSeconds = (performance.now() - started) / 1000;
  const peakRss = sampler.stop();
  if (down.bytes !== BIG_BYTES || JSON.parse(up.body).bytes !== BIG_BYTES)
    throw new Error(`streams incomplete: down ${down.bytes}, up ${up.body}`);

  const q = (name, p) => percentile(fixed[name], p);
  const figures = {
    rate: RATE,
    samples: { direct: fixed.direct.length, proxy: fixed.proxy.length },
    late,
    fixed: {
      direct: { p50: q('direct', 0.5), p99: q('direct', 0.99) },
      proxy: { p50: q('proxy', 0.5), p99: q('proxy', 0.99) },
      overheadP50: q('proxy', 0.5) - q('direct', 0.5),
      overheadP99: q('proxy', 0.99) - q('direct', 0.99),
      token: { p50: q('token', 0.5), p99: q('token', 0.99) },
      brokerCpuUsPerRequest: {
        proxy: (brokerCpu.proxy / sent.proxy) * 1e6,
        token: (brokerCpu.token / sent.token) * 1e6,
        idle: (brokerCpu.direct / sent.direct) * 1e6,
      },
    },
    saturation,
    rss: { idle: idleRss, peakWhileStreaming: peakRss, streamSeconds, bytesEachWay: BIG_BYTES },
  };
  const f = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
  log(
    `fixed rate ${RATE} req/s (a quarter of the proxy's saturation), ${fixed.direct.length}/${fixed.proxy.length} samples (direct/proxy)`,
  );
  log(`  direct p50 ${f(figures.fixed.direct.p50)} ms, p99 ${f(figures.fixed.direct.p99)} ms`);
  log(`  proxy  p50 ${f(figures.fixed.proxy.p50)} ms, p99 ${f(figures.fixed.proxy.p99)} ms`);
  log(`  token API (reference) p50 ${f(figures.fixed.token.p50)} ms, p99 ${f(figures.fixed.token.p99)} ms`);
  const cpu = figures.fixed.brokerCpuUsPerRequest;
  log(
    `  broker CPU (user+sys) per request: proxied GET ${f(cpu.proxy)} µs, token API ${f(cpu.token)} µs; idle broker during direct slices ${f(cpu.idle)} µs per direct request`,
  );
  log(`  overhead p50 ${f(figures.fixed.overheadP50)} ms, p99 ${f(figures.fixed.overheadP99)} ms`);
  log(
    `saturation (50 clients): direct ${f(saturation.direct.rps)} req/s p50 ${saturation.direct.p50} ms p99 ${saturation.direct.p99} ms; proxy ${f(saturation.proxy.rps)} req/s p50 ${saturation.proxy.p50} ms p99 ${saturation.proxy.p99} ms`,
  );
  log(
    `RSS: idle ${f(idleRss)} MiB, peak ${f(peakRss)} MiB while ${BIG_MB} MB went each way at once (${f(streamSeconds)} s)`,
  );

  await broker.stop();
  await upstream.stop();
  redis.client.disconnect();
  await redis.proc.stop();
  agent.destroy();
  return figures;
}

/** One streamed request: a GET whose body is counted, or a POST of `uploadBytes` generated on the fly. */
function stream(base, headers, method, path, uploadBytes) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        headers: {
          ...headers,
          ...(uploadBytes
            ? { 'content-length': String(uploadBytes), 'content-type': 'application/octet-stream' }
            : {}),
        },
      },
      (res) => {
        let bytes = 0;
        const chunks = [];
        res.on('data', (c) => {
          bytes += c.length;
          if (uploadBytes) chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode, bytes, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (!uploadBytes) return req.end();
    let sent = 0;
    const pump = () => {
      while (sent < uploadBytes) {
        sent += CHUNK.length;
        if (!req.write(CHUNK)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** The fake provider API (this file with --serve-upstream) in its own process, once it answers. */
export async function startFakeApi(agent) {
  const port = await freePort();
  const proc = startChild('fake-api', process.execPath, [
    fileURLToPath(import.meta.url),
    '--serve-upstream',
    String(port),
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'fake API',
    async () => (await request(agent, `${url}/api/small`)).status === 200,
    10_000,
    proc,
  );
  return { ...proc, url };
}

const self = process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url;
if (self && process.argv[2] === '--serve-upstream') {
  serveUpstream(Number(process.argv[3]));
} else if (self) {
  installCleanup(180_000);
  const figures = await runProxyBench({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(figures, null, 2));
  process.exit(0);
}
