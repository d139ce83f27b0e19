// `npm run bench`: the broker measured beside its floor, on loopback, against a private
// redis-server this script starts (never the machine's Redis on 6379). Prints a table and writes
// bench/results.md. Absolute figures drift on a shared machine; the ratios are the point.
//
// Options: --only=token,stampede,connect,scale (scenarios to run; memory is measured alongside)
//          --quick (short runs, for trying the script out)
//          --profile (the first broker runs under --cpu-prof; the profile is summarised at the end)
//          --no-write (do not write bench/results.md)
//          --dist=<dir> (run another build of the broker, e.g. an older commit's, for before/after)
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  commandCalls,
  indexedCount,
  cpuSeconds,
  diffCalls,
  drive,
  freePort,
  installCleanup,
  makeAgent,
  paced,
  parseInfo,
  prepareBurst,
  percentile,
  request,
  rssMiB,
  rssSampler,
  sleep,
  startChild,
  startRedis,
  tempDir,
  waitUntil,
} from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const distArg = process.argv.slice(2).find((a) => a.startsWith('--dist='));
// Another build of the broker (e.g. an older commit's, for before/after); the default is ./dist.
const DEPLOYED_NODE_OPTIONS = dockerfileNodeOptions() ?? '';
const DIST = distArg ? resolve(ROOT, distArg.slice(7)) : join(ROOT, 'dist');

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const onlyArg = argv.find((a) => a.startsWith('--only='));
const ONLY = onlyArg
  ? new Set(onlyArg.slice(7).split(','))
  : new Set(['token', 'stampede', 'connect', 'scale', 'proxy']);
const QUICK = flag('quick');
const PROFILE = flag('profile');

// Durations (ms). The whole run stays under ~3 minutes plus the build.
const T = QUICK
  ? { warm: 1000, max: 3000, fixed: 2000, phase: 2000 }
  : { warm: 2000, max: 10_000, fixed: 10_000, phase: 4000 };
const CLIENTS = 50;
const CONNECTIONS = 1000;
const SCALE_CONNECTIONS = QUICK ? 20_000 : 100_000;
const STAMPEDE_CALLERS = 500;
const STAMPEDE_ROUNDS = 3;
const PROVIDER_DELAY_MS = 300;
const PROVIDER = 'bexio';
const RETURN_TO = 'https://app.example.com/integrations';
// Token sizes of a typical opaque provider: 120-byte access token, 64-byte refresh token.
const ACCESS_BYTES = 120;
const REFRESH_BYTES = 64;
const TOKEN_BYTES = ACCESS_BYTES + REFRESH_BYTES;
const SCOPES = ['openid', 'offline_access', 'accounting'];

installCleanup(QUICK ? 150_000 : 300_000);
if (!existsSync(join(DIST, 'main.js')))
  throw new Error('dist/main.js is missing: run `npm run build` first (npm run bench does)');

const INTERNAL_KEY = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${INTERNAL_KEY}` };
const SECRETS = {
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  INTERNAL_API_KEYS: INTERNAL_KEY,
};
const agent = makeAgent(256);
const results = { scenarios: {}, notes: [] };
const log = (line) => console.log(`bench: ${line}`);

// ---------------------------------------------------------------------------------------------
// processes

function cleanEnv(extra) {
  // Only what the process needs: a developer's REDIS_* or provider variables must not leak in.
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', ...extra };
}

function brokerEnv(redisUrl, fakeUrl, port, internalPort) {
  const p = PROVIDER.toUpperCase().replace(/-/g, '_');
  return cleanEnv({
    // As deployed: `npm start` and the Dockerfile run node with these V8 options.
    NODE_OPTIONS: DEPLOYED_NODE_OPTIONS,
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(internalPort),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    REDIS_URL: redisUrl,
    ...SECRETS,
    ALLOWED_RETURN_URLS: RETURN_TO,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    [`${p}_CLIENT_ID`]: 'bench-client',
    [`${p}_CLIENT_SECRET`]: 'bench-client-secret',
    [`${p}_AUTHORIZATION_URL`]: `${fakeUrl}/authorize`,
    [`${p}_TOKEN_URL`]: `${fakeUrl}/token`,
    [`${p}_REVOCATION_URL`]: `${fakeUrl}/revoke`,
  });
}

async function startBroker(name, redisUrl, fakeUrl, nodeArgs = [], extraEnv = {}) {
  const port = await freePort();
  const internalPort = await freePort();
  const env = { ...brokerEnv(redisUrl, fakeUrl, port, internalPort), ...extraEnv };
  // cwd is an empty directory, so dotenv finds no .env of the developer's.
  const proc = startChild(name, process.execPath, [...nodeArgs, join(DIST, 'main.js')], {
    env,
    cwd: tempDir('ob-bench-cwd-'),
  });
  const internalUrl = `http://127.0.0.1:${internalPort}`;
  await waitUntil(
    `${name} /readyz`,
    async () => (await request(agent, `${internalUrl}/readyz`)).status === 200,
    20_000,
    proc,
  );
  return { ...proc, env, publicUrl: `http://127.0.0.1:${port}`, internalUrl };
}

/** NODE_OPTIONS as the Dockerfile's ENV sets it (`npm start` gets the same through .npmrc), if it does. */
function dockerfileNodeOptions() {
  try {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const m = /NODE_OPTIONS=(?:"([^"]*)"|(\S+))/.exec(text);
    return m ? (m[1] ?? m[2]) : undefined;
  } catch {
    return undefined;
  }
}

async function startFloor(redisUrl) {
  const port = await freePort();
  const proc = startChild('floor', process.execPath, [join(HERE, 'floor.mjs')], {
    // The floor runs with the broker's V8 options, so the ratio compares the code alone.
    env: cleanEnv({
      PORT: String(port),
      REDIS_URL: redisUrl,
      FLOOR_PREFIX: 'floor:',
      NODE_OPTIONS: DEPLOYED_NODE_OPTIONS,
    }),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('floor', async () => (await request(agent, `${url}/healthz`)).status === 200, 10_000, proc);
  return { ...proc, url };
}

async function startFakeProvider() {
  const port = await freePort();
  const proc = startChild('fake-provider', process.execPath, [join(HERE, 'fake-provider.mjs')], {
    env: cleanEnv({ PORT: String(port) }),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'fake provider',
    async () => (await request(agent, `${url}/_stats`)).status === 200,
    10_000,
    proc,
  );
  return {
    ...proc,
    url,
    async stats() {
      return JSON.parse((await request(agent, `${url}/_stats`)).body);
    },
    async delay(ms) {
      await request(agent, `${url}/_config?delay_ms=${ms}`, { method: 'POST' });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// load

/**
 * The token API of `base` under load, a random connection of `ids` per request. Without `rate`:
 * autocannon, CLIENTS closed-loop clients (as fast as the target answers). With `rate`: the paced
 * open-loop generator of lib.mjs, requests evenly spaced at `rate` req/s, latency from each
 * request's intended start (autocannon's `overallRate` is not used: it caps each connection per
 * second, so every connection fires its second's quota back-to-back at the start of the second,
 * a saturated burst each second rather than a rate below saturation). Latency percentiles come from
 * every 2xx response's own time (sub-millisecond; autocannon's histogram rounds to whole ms). CPU
 * is the target process's user+system time over the run.
 */
async function tokenLoad(base, ids, { durationMs, rate, pid }) {
  const tokenPath = () =>
    `/internal/connections/${PROVIDER}/${ids[Math.floor(Math.random() * ids.length)]}/token`;
  const sampler = pid ? rssSampler(pid) : undefined;
  const cpuBefore = pid ? cpuSeconds(pid) : NaN;
  if (rate) {
    const r = await paced({ url: base, rate, durationMs, headers: AUTH, pathFor: tokenPath });
    const cpu = pid ? cpuSeconds(pid) - cpuBefore : NaN;
    const peakRss = sampler?.stop();
    const bad = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2'));
    if (bad.length > 0 || r.errors > 0) {
      throw new Error(
        `paced token load at ${rate} req/s on ${base} had failures: statuses ${JSON.stringify(r.statuses)}, errors ${r.errors}`,
      );
    }
    return {
      samples: r.samples,
      seconds: r.seconds,
      cpu,
      peakRss,
      sent: r.sent,
      late: r.late,
      lagP50: r.lagP50,
      queued: r.queued,
      generatorCpu: (r.cpuUs * r.sent) / 1e6,
    };
  }
  const samples = [];
  const statuses = {};
  const instance = autocannon({
    url: base,
    connections: CLIENTS,
    duration: durationMs / 1000,
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
  instance.on('response', (_client, status, _bytes, ms) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) samples.push(ms);
  });
  const result = await instance;
  const cpu = pid ? cpuSeconds(pid) - cpuBefore : NaN;
  const peakRss = sampler?.stop();
  const bad = Object.entries(statuses).filter(([s]) => !s.startsWith('2'));
  if (bad.length > 0 || result.errors > 0) {
    throw new Error(
      `token load on ${base} had failures: statuses ${JSON.stringify(statuses)}, errors ${result.errors}, timeouts ${result.timeouts}`,
    );
  }
  return { samples, seconds: result.duration, cpu, peakRss };
}

/**
 * Runs the same load on each target in turn, in `slices` alternating slices, so a change in what
 * else the machine does weighs on all targets alike. `rate`: paced open loop at that many req/s
 * (see tokenLoad); without it, closed loop. Answers per target: req/s, percentiles, CPU per request
 * (µs) and peak RSS; paced, also the share of requests the generator issued > 5 ms late
 * (`lateShare`, `behind` when over 5 %: then the latencies are not to be trusted), its median
 * timer lag and how many requests waited for a free socket.
 */
async function interleaved(targets, ids, { durationMs, rate, slices = 5 }) {
  const acc = targets.map(() => ({
    samples: [],
    seconds: 0,
    cpu: 0,
    peakRss: 0,
    sent: 0,
    late: 0,
    queued: 0,
    lagP50: [],
    generatorCpu: 0,
  }));
  for (let i = 0; i < slices; i++) {
    // Alternate who goes first, so neither always follows the other.
    const order = i % 2 === 0 ? targets.map((_, k) => k) : targets.map((_, k) => targets.length - 1 - k);
    for (const k of order) {
      const t = targets[k];
      const r = await tokenLoad(t.base, t.ids ?? ids, {
        durationMs: durationMs / slices,
        rate,
        pid: t.pid,
      });
      acc[k].samples.push(...r.samples);
      acc[k].seconds += r.seconds;
      acc[k].cpu += r.cpu;
      acc[k].peakRss = Math.max(acc[k].peakRss, r.peakRss ?? 0);
      if (rate) {
        acc[k].sent += r.sent;
        acc[k].late += r.late;
        acc[k].queued += r.queued;
        acc[k].lagP50.push(r.lagP50);
        acc[k].generatorCpu += r.generatorCpu;
      }
    }
  }
  return acc.map((a) => ({
    rps: a.samples.length / a.seconds,
    p50: percentile(a.samples, 0.5),
    p99: percentile(a.samples, 0.99),
    requests: a.samples.length,
    cpuUs: (a.cpu / a.samples.length) * 1e6,
    peakRss: a.peakRss,
    ...(rate
      ? {
          rate,
          lateShare: a.late / a.sent,
          behind: a.late / a.sent > 0.05,
          lagP50: percentile(a.lagP50, 0.5),
          queued: a.queued,
          generatorCpuUs: (a.generatorCpu / a.sent) * 1e6,
        }
      : {}),
  }));
}

/** A line for the log about a paced run's generator: whether its figures can be trusted. */
function pacedLog(label, runs) {
  const late = Math.max(...runs.map((r) => r.lateShare));
  const lag = Math.max(...runs.map((r) => r.lagP50));
  const queued = runs.reduce((n, r) => n + r.queued, 0);
  const cpu = Math.max(...runs.map((r) => r.generatorCpuUs));
  log(
    `${label}: generator issued ${(late * 100).toFixed(1)} % of requests > 5 ms late${late > 0.05 ? ' (BEHIND: these latencies are not to be trusted)' : ''}, median timer lag ${lag.toFixed(2)} ms, ${queued} waited for a free socket, generator CPU ${cpu.toFixed(0)} µs/request`,
  );
  if (late > 0.05)
    results.notes.push(
      `${label}: the load generator fell behind (${(late * 100).toFixed(1)} % of requests issued more than 5 ms after their intended start, on a machine too busy for it): these paced latencies are not to be trusted.`,
    );
}

function randomToken(bytes) {
  // base64url of n bytes: 4/3 n characters.
  return randomBytes((bytes * 3) / 4).toString('base64url');
}

function connectionIds(prefix, n) {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
}

async function importConnections(broker, ids, expiresIn) {
  const run = await drive({
    concurrency: 20,
    count: ids.length,
    work: async (i) => {
      const res = await request(agent, `${broker.internalUrl}/internal/connections/${PROVIDER}/${ids[i]}`, {
        method: 'PUT',
        headers: AUTH,
        body: {
          access_token: randomToken(ACCESS_BYTES),
          refresh_token: randomToken(REFRESH_BYTES),
          expires_in: expiresIn,
          scopes: SCOPES,
        },
      });
      if (res.status !== 201 && res.status !== 200)
        throw new Error(`PUT answered ${res.status}: ${res.body}`);
    },
  });
  if (run.failed > 0) throw run.failures[0];
  return run;
}

// ---------------------------------------------------------------------------------------------
// scenarios

async function scenarioToken(env) {
  const { broker, redis } = env;
  const ids = connectionIds('bench', CONNECTIONS);
  log(`token API: importing ${CONNECTIONS} connections`);
  await importConnections(broker, ids, 86_400);
  env.tokenIds = ids;

  // The floor reads a value as large as a broker record (fields and values) and answers the same shape.
  const sample = await redis.client.hgetall(`ob:{${PROVIDER}:${ids[0]}}:conn`);
  const recordBytes = Object.entries(sample).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );
  const pipeline = redis.client.pipeline();
  for (const id of ids) {
    const value = {
      access_token: randomToken(ACCESS_BYTES),
      token_type: 'Bearer',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      scopes: SCOPES,
      pad: '',
    };
    value.pad = 'x'.repeat(Math.max(0, recordBytes - JSON.stringify(value).length));
    pipeline.set(`floor:{${PROVIDER}:${id}}`, JSON.stringify(value));
  }
  await pipeline.exec();
  const floor = await startFloor(redis.url);
  env.floor = floor;
  results.memory.idleAfterImport = rssMiB(broker.pid);
  results.memory.floorIdle = rssMiB(floor.pid);
  // The same broker with V8's default heap settings (no NODE_OPTIONS), through the same imports:
  // what the deployed options buy.
  const dockerOptions = DEPLOYED_NODE_OPTIONS;
  const docker = dockerOptions
    ? await startBroker('broker-v8-defaults', redis.url, env.fake.url, [], { NODE_OPTIONS: '' })
    : undefined;
  if (docker) await importConnections(docker, ids, 86_400);

  const targets = [
    { base: broker.internalUrl, pid: broker.pid },
    { base: floor.url, pid: floor.pid },
  ];
  if (docker) targets.push({ base: docker.internalUrl, pid: docker.pid });
  log(
    `token API: broker and floor, ${CLIENTS} clients, ${T.max / 1000} s each in alternating slices (after a warm-up)`,
  );
  await tokenLoad(floor.url, ids, { durationMs: T.warm });
  await tokenLoad(broker.internalUrl, ids, { durationMs: T.warm });
  if (docker) await tokenLoad(docker.internalUrl, ids, { durationMs: T.warm });
  const [brokerMax, floorMax, dockerMax] = await interleaved(targets, ids, { durationMs: T.max });
  await docker?.stop();
  const rate = Math.max(50, Math.round(floorMax.rps * 0.5));
  const rateLow = Math.max(25, Math.round(floorMax.rps * 0.25));
  env.fixedRate = rate;
  log(
    `token API: both paced (open loop, evenly spaced) at ${rate} req/s (half the floor's maximum), ${T.fixed / 1000} s each`,
  );
  const [brokerFixed, floorFixed] = await interleaved(targets.slice(0, 2), ids, {
    durationMs: T.fixed,
    rate,
    slices: 2,
  });
  pacedLog(`token API paced at ${rate} req/s`, [brokerFixed, floorFixed]);
  log(
    `token API: both paced at ${rateLow} req/s (a quarter of the floor's maximum), ${T.fixed / 1000} s each`,
  );
  const [brokerLow, floorLow] = await interleaved(targets.slice(0, 2), ids, {
    durationMs: T.fixed,
    rate: rateLow,
    slices: 2,
  });
  pacedLog(`token API paced at ${rateLow} req/s`, [brokerLow, floorLow]);
  results.memory.underLoad = Math.max(brokerMax.peakRss, brokerFixed.peakRss, brokerLow.peakRss);
  results.memory.floorUnderLoad = floorMax.peakRss;
  if (dockerMax) results.memory.docker = { options: dockerOptions, max: dockerMax };
  results.scenarios.token = {
    recordBytes,
    floorMax,
    brokerMax,
    brokerFixed,
    floorFixed,
    rate,
    brokerLow,
    floorLow,
    rateLow,
  };
  await floor.stop();
}

/**
 * A floor burst measured as the stampede is: STAMPEDE_ROUNDS bursts, the worst p99 kept (a single
 * burst against the worst of several rounds would favour the floor on a noisy machine).
 */
async function worstBurst(fire, what) {
  let worst;
  for (let round = 0; round < STAMPEDE_ROUNDS; round++) {
    const burst = await fire();
    if (burst.failed > 0) throw new Error(`${what} had failures`);
    const p99 = percentile(
      burst.answers.map((a) => a.ms),
      0.99,
    );
    if (!worst || p99 > worst.p99) worst = { p99, writeMs: burst.writeMs };
  }
  return worst;
}

/**
 * What absorbing the stampede's burst costs any Node service on these cores: the same number of
 * callers at one moment, half on each of two floor processes (bare Express 5 + one ioredis GET,
 * bench/floor.mjs), nothing to wait for. The broker's own fresh-token burst is the stampede's floor;
 * this one says how much of that is the machine.
 */
async function bareBurst(redis) {
  const id = 'stampede-bare';
  await redis.client.set(
    `floor:{${PROVIDER}:${id}}`,
    JSON.stringify({
      access_token: randomToken(ACCESS_BYTES),
      token_type: 'Bearer',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      scopes: SCOPES,
    }),
  );
  const floors = [await startFloor(redis.url), await startFloor(redis.url)];
  const callers = await prepareBurst({
    targets: floors.map((f) => f.url),
    count: STAMPEDE_CALLERS,
    headers: AUTH,
  });
  try {
    const path = () => `/internal/connections/${PROVIDER}/${id}/token`;
    await callers.fire(path); // unmeasured: the floors' first burst
    return await worstBurst(() => callers.fire(path), 'the bare floor burst');
  } finally {
    callers.close();
    await Promise.all(floors.map((f) => f.stop()));
  }
}

async function scenarioStampede(env) {
  const { broker, fake, redis } = env;
  const broker2 = await startBroker('broker-2', redis.url, fake.url);
  const brokers = [broker, broker2];
  await fake.delay(PROVIDER_DELAY_MS);
  // One raw keep-alive socket per caller, half on each process, opened now and kept for every
  // burst: each burst writes all requests back to back at one moment and times the answers from it.
  const callers = await prepareBurst({
    targets: brokers.map((b) => b.internalUrl),
    count: STAMPEDE_CALLERS,
    headers: AUTH,
  });
  const tokenPath = (id) => () => `/internal/connections/${PROVIDER}/${id}/token`;
  /** A stale connection's stampede: who answered what, and what the provider saw. */
  const stampede = async (id) => {
    // Valid for 60 s, inside REFRESH_MARGIN (300 s): stale, so every caller needs a refresh.
    await importConnections(broker, [id], 60);
    const before = await fake.stats();
    const { answers, writeMs, startedAt } = await callers.fire(tokenPath(id));
    const after = await fake.stats();
    const providerCalls = after.refresh_calls - before.refresh_calls;
    const latencies = answers.filter((a) => a.status === 200).map((a) => a.ms);
    const failed = answers.filter((a) => a.status !== 200);
    return {
      providerCalls,
      // What the provider's token requests of this round took there (the nominal delay plus its
      // timer's lateness); the longest if there were several.
      providerMs: providerCalls > 0 ? Math.max(...after.token_ms.slice(-providerCalls)) : NaN,
      // When the (last) token request reached the provider, from the moment the callers asked.
      providerAsked: providerCalls > 0 ? after.last_token_at - startedAt : NaN,
      distinctTokens: new Set(
        answers.filter((a) => a.status === 200).map((a) => JSON.parse(a.body).access_token),
      ).size,
      failed: failed.length,
      failedStatuses: [...new Set(failed.map((a) => a.status))],
      first: Math.min(...latencies),
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      p99ByProcess: [0, 1].map((k) =>
        percentile(
          answers.filter((a) => a.target === k && a.status === 200).map((a) => a.ms),
          0.99,
        ),
      ),
      max: Math.max(...latencies),
      writeMs,
    };
  };
  const describe = (r) =>
    `${r.providerCalls} provider call(s) (asked at +${f1(r.providerAsked)} ms, ${f1(r.providerMs)} ms there), ${r.distinctTokens} distinct token(s), ${r.failed} failed${r.failed ? ` (status ${r.failedStatuses.join(', ')})` : ''}; first answer ${f1(r.first)} ms, p99 ${f1(r.p99)} ms (per process ${r.p99ByProcess.map(f1).join(' / ')}); write loop ${f1(r.writeMs)} ms`;
  try {
    await importConnections(broker, ['stampede-fresh'], 86_400);
    // An unmeasured burst first (the token path's first calls in this run, when it has not had the
    // token scenario), then the floor: the same burst for a fresh token, which needs no refresh.
    await callers.fire(tokenPath('stampede-fresh'));
    const fresh = await worstBurst(() => callers.fire(tokenPath('stampede-fresh')), 'the fresh-token burst');
    const freshP99 = fresh.p99;
    log(
      `stampede floor: ${STAMPEDE_CALLERS} callers for a fresh token, p99 ${f1(freshP99)} ms; write loop ${f1(fresh.writeMs)} ms`,
    );
    const bare = await bareBurst(redis);
    log(
      `stampede, bare floor: ${STAMPEDE_CALLERS} callers on two bare Express + GET processes, p99 ${f1(bare.p99)} ms; write loop ${f1(bare.writeMs)} ms`,
    );
    // An unmeasured stampede first: each process's first refresh (cold JIT, the HTTP client's first
    // call, ...) is not what a stampede costs.
    // Each process's own first refresh too: a stampede's lock goes to either process, and the
    // warm-up stampede warms the winner's refresh path only.
    await importConnections(broker, ['stampede-warm-each'], 86_400);
    for (const b of brokers) {
      const res = await request(
        agent,
        `${b.internalUrl}/internal/connections/${PROVIDER}/stampede-warm-each/token?force_refresh=true`,
        { headers: AUTH },
      );
      if (res.status !== 200) throw new Error(`warm-up refresh on ${b.name} answered ${res.status}`);
    }
    log(`stampede warm-up (not measured): ${describe(await stampede('stampede-warm'))}`);
    const rounds = [];
    for (let round = 1; round <= STAMPEDE_ROUNDS; round++) {
      rounds.push(await stampede(`stampede-${round}`));
      log(`stampede round ${round}: ${describe(rounds.at(-1))}`);
    }
    results.scenarios.stampede = { rounds, freshP99, freshWriteMs: fresh.writeMs, bare };
  } finally {
    await fake.delay(0);
    callers.close();
    await broker2.stop();
  }
}

function cookieHeader(setCookie) {
  return (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
    .map((c) => c.split(';')[0])
    .join('; ');
}

async function scenarioConnect(env) {
  const { broker, redis } = env;
  const phase = async (name, options) => {
    await redis.client.config('RESETSTAT');
    const run = await drive({ concurrency: CLIENTS, durationMs: T.phase, ...options });
    const calls = diffCalls({}, await commandCalls(redis.client));
    delete calls['config|resetstat'];
    delete calls.config;
    delete calls.info;
    const perItem = {};
    for (const [k, v] of Object.entries(calls)) perItem[k] = run.done > 0 ? v / run.done : 0;
    if (run.failed > 0)
      throw new Error(`connect flow, ${name}: ${run.failed} failed, first: ${run.failures[0]?.message}`);
    log(`connect flow, ${name}: ${run.done} in ${run.seconds.toFixed(1)} s = ${run.rate.toFixed(0)}/s`);
    return {
      done: run.done,
      rate: run.rate,
      p50: percentile(run.latencies, 0.5),
      p99: percentile(run.latencies, 0.99),
      redisCalls: perItem,
    };
  };

  const links = [];
  const links$ = await phase('connect links (POST /internal/connect-sessions)', {
    count: 50_000,
    work: async (i) => {
      const res = await request(agent, `${broker.internalUrl}/internal/connect-sessions`, {
        method: 'POST',
        headers: AUTH,
        body: { provider: PROVIDER, connection_id: `flow-${i}`, return_to: RETURN_TO },
      });
      if (res.status !== 201) throw new Error(`connect-sessions answered ${res.status}: ${res.body}`);
      links.push(JSON.parse(res.body).url);
    },
  });
  const flows = [];
  const auth$ = await phase('GET /auth (302 to the provider)', {
    count: links.length,
    work: async (i) => {
      const res = await request(agent, links[i]);
      if (res.status !== 302) throw new Error(`/auth answered ${res.status}`);
      const state = new URL(res.headers.location).searchParams.get('state');
      flows.push({ cookie: cookieHeader(res.headers['set-cookie']), state });
    },
  });
  const callback$ = await phase('GET /callback (code exchange, store, 303)', {
    count: flows.length,
    work: async (i) => {
      const { cookie, state } = flows[i];
      const res = await request(
        agent,
        `${broker.publicUrl}/callback/${PROVIDER}?code=code-${i}&state=${encodeURIComponent(state)}`,
        {
          headers: { cookie },
        },
      );
      if (res.status !== 303 || !String(res.headers.location).includes('connected=')) {
        throw new Error(`/callback answered ${res.status} ${res.headers.location ?? ''}`);
      }
    },
  });
  results.scenarios.connect = { links: links$, auth: auth$, callback: callback$ };
}

async function scenarioScale(env) {
  const { broker, redis } = env;
  const memory = async () => Number(parseInfo(await redis.client.info('memory')).used_memory);
  const keysBefore = await redis.client.dbsize();
  const before = await memory();
  log(`scale: writing ${SCALE_CONNECTIONS} connections with the broker's own ConnectionService`);
  const seeded = await seedWithBrokerCode(broker.env, redis.url, SCALE_CONNECTIONS);
  log(`scale: written and read once in ${seeded.seconds.toFixed(1)} s`);
  const after = await memory();
  const keysAdded = (await redis.client.dbsize()) - keysBefore;
  const perConnection = (after - before) / SCALE_CONNECTIONS;
  const sample = await redis.client.hgetall(`ob:{${PROVIDER}:${seeded.ids[0]}}:conn`);
  // The sealed tokens sit in their own string key beside the hash (older builds: a hash field).
  const sealedValue = sample.sealed ?? (await redis.client.get(`ob:{${PROVIDER}:${seeded.ids[0]}}:sealed`));
  const encoding = await redis.client.object('ENCODING', `ob:{${PROVIDER}:${seeded.ids[0]}}:conn`);
  const fieldBytes = Object.entries(sample).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );

  const allIds = [...env.tokenIds, ...seeded.ids];
  log(
    `scale: token API over ${allIds.length} connections, ${CLIENTS} clients, ${T.max / 1000} s, then paced at ${env.fixedRate} req/s`,
  );
  await tokenLoad(broker.internalUrl, allIds, { durationMs: T.warm });
  // The same broker over all connections and over the first 1,000, alternating.
  const targets = [
    { base: broker.internalUrl, pid: broker.pid, ids: allIds },
    { base: broker.internalUrl, pid: broker.pid, ids: env.tokenIds },
  ];
  const [max, max1k] = await interleaved(targets, allIds, { durationMs: T.max });
  const [fixed, fixed1k] = await interleaved(targets, allIds, {
    durationMs: T.fixed,
    rate: env.fixedRate,
    slices: 2,
  });
  pacedLog(`scale: token API paced at ${env.fixedRate} req/s`, [fixed, fixed1k]);

  log('scale: paging through GET /internal/connections?limit=1000');
  await redis.client.config('RESETSTAT');
  const sampler = rssSampler(broker.pid);
  const cpu0 = { broker: cpuSeconds(broker.pid), redis: cpuSeconds(redis.proc.pid) };
  let parseMs = 0;
  const t0 = performance.now();
  let cursor = '';
  let pages = 0;
  let listed = 0;
  for (;;) {
    const res = await request(
      agent,
      `${broker.internalUrl}/internal/connections?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      { headers: AUTH },
    );
    if (res.status !== 200) throw new Error(`listing answered ${res.status}: ${res.body}`);
    const p0 = performance.now();
    const page = JSON.parse(res.body);
    parseMs += performance.now() - p0;
    pages += 1;
    listed += page.connections.length;
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  const listSeconds = (performance.now() - t0) / 1000;
  const listCpu = {
    broker: cpuSeconds(broker.pid) - cpu0.broker,
    redis: cpuSeconds(redis.proc.pid) - cpu0.redis,
    client: parseMs / 1000,
  };
  const listPeakRss = sampler.stop();
  const calls = diffCalls({}, await commandCalls(redis.client));
  const totalConnections = await indexedCount(redis.client);
  results.memory.underLoadScale = Math.max(max.peakRss, fixed.peakRss);
  results.memory.listing = listPeakRss;
  results.scenarios.scale = {
    n: SCALE_CONNECTIONS,
    seedSeconds: seeded.seconds,
    perConnection,
    keysPerConnection: keysAdded / SCALE_CONNECTIONS,
    fieldBytes,
    sealedBytes: Buffer.byteLength(sealedValue ?? ''),
    encoding,
    max,
    fixed,
    max1k,
    fixed1k,
    rate: env.fixedRate,
    listing: {
      cpu: listCpu,
      seconds: listSeconds,
      pages,
      listed,
      totalConnections,
      calls,
      scans: (calls.keys ?? 0) + (calls.scan ?? 0),
    },
  };
}

/** Writes connections exactly as a PUT would, through dist/'s ConnectionService, many at a time. */
async function seedWithBrokerCode(env, redisUrl, n) {
  const load = async (path) => {
    const m = await import(pathToFileURL(join(DIST, path)).href);
    return m.default ?? m;
  };
  const { loadConfig } = await load('config/load-config.js');
  const { createBroker } = await load('create-broker.js');
  const { createLogger } = await load('observability/logger.js');
  const { parseImport } = await load('http/routes/parse-import.js');
  const { default: Redis } = await import('ioredis');
  const client = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const seeder = createBroker(loadConfig({ ...env, REDIS_URL: redisUrl }), {
    logger: createLogger('warn'),
    redis: client,
  });
  const provider = seeder.registry.get(PROVIDER);
  const ids = connectionIds('scale', n);
  try {
    const run = await drive({
      concurrency: 500,
      count: n,
      work: async (i) => {
        const imported = parseImport(
          {
            access_token: randomToken(ACCESS_BYTES),
            refresh_token: randomToken(REFRESH_BYTES),
            expires_in: 86_400,
            scopes: SCOPES,
          },
          'oauth2',
        );
        await seeder.connections.saveTokens(
          provider,
          ids[i],
          imported.tokens,
          imported.tokens.granted_scopes ?? provider.scopes,
        );
        // Read once through the token path, as the first 1,000 were: the first read of a connection
        // notes it for refresh-ahead (a Lua write), later reads do not; the runs compare later reads.
        await seeder.connections.getToken(provider, ids[i], { minValiditySeconds: 0, forceRefresh: false });
      },
    });
    if (run.failed > 0) throw run.failures[0];
    return { ids, seconds: run.seconds };
  } finally {
    await client.quit();
  }
}

// ---------------------------------------------------------------------------------------------
// report

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ms = (x) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms` : 'n/a');
const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');
// The issue's target is 150 MB; read as decimal megabytes, that is 143 MiB.
const RSS_TARGET = '< 150 MB (143 MiB)';
const underRssTarget = (mibValue) => mibValue * 1024 * 1024 < 150e6;
const mib = (value) => `${f0(value)} MiB (${f0((value * 1024 * 1024) / 1e6)} MB)`;
/** The generator's side of a paced row: its timer lag, and a warning when it fell behind. */
const pacedDetail = (...runs) => {
  const late = Math.max(...runs.map((r) => r.lateShare));
  const lag = Math.max(...runs.map((r) => r.lagP50));
  return `${late > 0.05 ? `GENERATOR BEHIND (${f1(late * 100)} % issued > 5 ms late): not to be trusted; ` : ''}includes the generator's timer lag, median ${ms(lag)}`;
};

function rows() {
  const out = [];
  const s = results.scenarios;
  if (s.token) {
    const { floorMax, brokerMax, brokerFixed, floorFixed, rate, brokerLow, floorLow, rateLow } = s.token;
    out.push(['1. Token API (1,000 connections, fresh tokens)', '', '', '', '', '']);
    out.push([
      `req/s at ${CLIENTS} clients`,
      f0(brokerMax.rps),
      f0(floorMax.rps),
      f2(brokerMax.rps / floorMax.rps),
      '≥ 0.8× floor',
      verdict(brokerMax.rps / floorMax.rps >= 0.8),
    ]);
    out.push([
      `p50 at ${CLIENTS} clients`,
      ms(brokerMax.p50),
      ms(floorMax.p50),
      f2(brokerMax.p50 / floorMax.p50),
      '',
      '',
    ]);
    out.push([
      `p99 at ${CLIENTS} clients`,
      ms(brokerMax.p99),
      ms(floorMax.p99),
      f2(brokerMax.p99 / floorMax.p99),
      '≤ floor',
      verdict(brokerMax.p99 <= floorMax.p99),
    ]);
    for (const [r, b, f, share] of [
      [rate, brokerFixed, floorFixed, 'half'],
      [rateLow, brokerLow, floorLow, 'a quarter'],
    ]) {
      if (!b) continue;
      out.push([
        `p50 at ${r} req/s paced (${share} of the floor's max)`,
        ms(b.p50),
        ms(f.p50),
        f2(b.p50 / f.p50),
        '',
        pacedDetail(b, f),
      ]);
      out.push([
        `p99 at ${r} req/s paced (${share} of the floor's max)`,
        ms(b.p99),
        ms(f.p99),
        f2(b.p99 / f.p99),
        '≤ floor',
        verdict(b.p99 <= f.p99),
      ]);
    }
    out.push([
      'CPU per request (process user+sys)',
      `${f0(brokerMax.cpuUs)} µs`,
      `${f0(floorMax.cpuUs)} µs`,
      f2(brokerMax.cpuUs / floorMax.cpuUs),
      '',
      `paced at ${rate} req/s: ${f0(brokerFixed.cpuUs)} µs vs ${f0(floorFixed.cpuUs)} µs${brokerLow ? `; at ${rateLow} req/s: ${f0(brokerLow.cpuUs)} µs vs ${f0(floorLow.cpuUs)} µs` : ''}`,
    ]);
  }
  if (s.stampede) {
    const r = s.stampede.rounds;
    const calls = Math.max(...r.map((x) => x.providerCalls));
    const distinct = Math.max(...r.map((x) => x.distinctTokens));
    const p99 = Math.max(...r.map((x) => x.p99));
    const failed = r.reduce((n, x) => n + x.failed, 0);
    out.push([
      `2. Refresh stampede (${STAMPEDE_CALLERS} callers, 2 processes, provider ${PROVIDER_DELAY_MS} ms; worst of ${r.length})`,
      '',
      '',
      '',
      '',
      '',
    ]);
    out.push(['provider token calls per stampede', String(calls), '1', '', '= 1', verdict(calls === 1)]);
    out.push([
      'distinct tokens handed out',
      String(distinct),
      '1',
      '',
      '= 1',
      verdict(distinct === 1 && failed === 0),
    ]);
    out.push(['failed callers', String(failed), '0', '', '= 0', verdict(failed === 0)]);
    const worst = r.find((x) => x.p99 === p99);
    out.push([
      'callers p99 − provider latency',
      ms(p99 - PROVIDER_DELAY_MS),
      ms(s.stampede.freshP99),
      f2((p99 - PROVIDER_DELAY_MS) / s.stampede.freshP99),
      '≤ 50 ms',
      `${verdict(p99 - PROVIDER_DELAY_MS <= 50)}; floor: the same burst for a fresh token (p99, worst of ${STAMPEDE_ROUNDS}); worst round per process ${worst.p99ByProcess.map(ms).join(' / ')}, first answer ${ms(worst.first)}; provider observed ${ms(worst.providerMs)} (nominal ${PROVIDER_DELAY_MS} ms); write loop ${ms(worst.writeMs)} (floor ${ms(s.stampede.freshWriteMs)})`,
    ]);
    out.push([
      '… against absorbing the same burst, bare floor',
      ms(p99 - PROVIDER_DELAY_MS),
      ms(s.stampede.bare.p99),
      f2((p99 - PROVIDER_DELAY_MS) / s.stampede.bare.p99),
      '≤ floor',
      `${verdict(p99 - PROVIDER_DELAY_MS <= s.stampede.bare.p99)}; floor: the same ${STAMPEDE_CALLERS} callers at once on two bare Express 5 + ioredis GET processes, nothing to wait for (p99, worst of ${STAMPEDE_ROUNDS})`,
    ]);
  }
  if (s.connect) {
    const c = s.connect;
    // Background work (the sweeper) shows as fractions: only what each request does is listed.
    const calls = (x) =>
      Object.entries(x.redisCalls)
        .filter(([, v]) => v >= 0.5)
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([k, v]) => `${k}×${f1(v)}`)
        .join(' ');
    out.push([
      `3. Connect flow (${CLIENTS} concurrent browsers, provider answers at once)`,
      '',
      '',
      '',
      '',
      '',
    ]);
    out.push([
      'connect links /s (internal POST)',
      f0(c.links.rate),
      '',
      '',
      '',
      `p99 ${ms(c.links.p99)}; Redis per request: ${calls(c.links)}`,
    ]);
    out.push([
      '/auth redirects /s',
      f0(c.auth.rate),
      '',
      '',
      '',
      `p99 ${ms(c.auth.p99)}; Redis per request: ${calls(c.auth)}`,
    ]);
    out.push([
      'complete callbacks /s',
      f0(c.callback.rate),
      '',
      '',
      '',
      `p99 ${ms(c.callback.p99)}; Redis per request: ${calls(c.callback)}`,
    ]);
  }
  if (s.scale) {
    const sc = s.scale;
    const beyond = sc.perConnection - TOKEN_BYTES;
    out.push([`4. Scale (${sc.n.toLocaleString('en')} more connections)`, '', '', '', '', '']);
    out.push([
      'Redis bytes per connection',
      f0(sc.perConnection),
      '',
      '',
      '',
      `hash ${sc.encoding}, ${sc.fieldBytes} B of fields+values (sealed ${sc.sealedBytes} B), ${f2(sc.keysPerConnection)} keys/connection, plus index and schedule entries`,
    ]);
    out.push([
      `… beyond the ${TOKEN_BYTES} token bytes`,
      f0(beyond),
      '',
      '',
      '≤ 1024',
      verdict(beyond <= 1024),
    ]);
    const against1k = (label, a, b, fmt) => out.push([label, fmt(a), fmt(b), f2(a / b), '≈ 1', '']);
    against1k(`token req/s at ${CLIENTS} clients, all vs first 1,000`, sc.max.rps, sc.max1k.rps, f0);
    against1k(`token p99 at ${CLIENTS} clients, all vs first 1,000`, sc.max.p99, sc.max1k.p99, ms);
    against1k(`token p99 at ${sc.rate} req/s paced, all vs first 1,000`, sc.fixed.p99, sc.fixed1k.p99, ms);
    const l = sc.listing;
    out.push([
      `list all ${l.listed.toLocaleString('en')} (${l.pages} pages of 1,000)`,
      `${f1(l.seconds)} s`,
      '',
      '',
      'no KEYS/SCAN',
      `${verdict(l.scans === 0 && l.listed === l.totalConnections)}; ${f0(l.listed / l.seconds)} connections/s; CPU: broker ${f1(l.cpu.broker)} s, Redis ${f1(l.cpu.redis)} s, client JSON.parse ${f1(l.cpu.client)} s; Redis commands: ${Object.entries(
        l.calls,
      )
        .filter(([k]) => !k.startsWith('config') && k !== 'info')
        .map(([k, v]) => `${k}×${v}`)
        .join(' ')}`,
    ]);
  }
  const m = results.memory;
  out.push(['5. Memory (VmRSS of the broker)', '', '', '', '', '']);
  out.push(['RSS idle after start', mib(m.idle), '', '', '', '']);
  if (m.idleAfterImport !== undefined)
    out.push([
      'RSS idle, 1,000 connections imported',
      `${f0(m.idleAfterImport)} MiB`,
      m.floorIdle ? `${f0(m.floorIdle)} MiB` : '',
      '',
      '',
      '',
    ]);
  if (m.underLoad !== undefined)
    out.push([
      `RSS peak under load (token API, 1,000 connections)${DEPLOYED_NODE_OPTIONS ? `, ${DEPLOYED_NODE_OPTIONS} as deployed` : ''}`,
      mib(m.underLoad),
      m.floorUnderLoad ? `${f0(m.floorUnderLoad)} MiB` : '',
      m.floorUnderLoad ? f2(m.underLoad / m.floorUnderLoad) : '',
      RSS_TARGET,
      verdict(underRssTarget(m.underLoad)),
    ]);
  if (m.docker) {
    out.push([
      'RSS peak under load, V8 default heap settings (no NODE_OPTIONS)',
      mib(m.docker.max.peakRss),
      m.underLoad !== undefined ? `${f0(m.underLoad)} MiB` : '',
      m.underLoad !== undefined ? f2(m.docker.max.peakRss / m.underLoad) : '',
      '',
      `for comparison (baseline: as deployed); req/s ${f0(m.docker.max.rps)} vs ${f0(results.scenarios.token?.brokerMax.rps)}, CPU ${f0(m.docker.max.cpuUs)} µs vs ${f0(results.scenarios.token?.brokerMax.cpuUs)} µs per request`,
    ]);
  }
  if (m.underLoadScale !== undefined)
    out.push([
      'RSS peak under load (token API, all connections)',
      `${f0(m.underLoadScale)} MiB`,
      '',
      '',
      RSS_TARGET,
      verdict(underRssTarget(m.underLoadScale)),
    ]);
  if (m.listing !== undefined)
    out.push([
      'RSS peak while listing everything',
      `${f0(m.listing)} MiB`,
      '',
      '',
      RSS_TARGET,
      verdict(underRssTarget(m.listing)),
    ]);
  return out;
}

function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

/** What the figures of this run mean, where a number alone would mislead. */
function readingNotes() {
  const notes = [];
  const s = results.scenarios;
  if (s.token) {
    notes.push(
      "CPU per request is the steadiest figure on a shared machine (it does not depend on what else gets the cores); req/s and latency move with the load average. At saturation in a closed loop, p99 follows throughput (clients ÷ req/s); the paced rows compare latency at the same offered load below saturation, each request's time counted from when it was due, so they include the generator's own timer lag (shown beside them, alike for broker and floor).",
    );
  }
  if (s.connect) {
    notes.push(
      'Redis per request counts commands from INFO commandstats, including those a Lua script runs (an `evalsha` of the connection write shows with its `hget`/`hset`/`hdel`/`del`): round trips are the commands the broker sends itself (`evalsha`, `get`, `set`, `zadd`, `hgetall`).',
    );
  }
  if (s.scale?.encoding === 'hashtable') {
    notes.push(
      `Redis stores a hash as a compact listpack only while every value is at most \`hash-max-listpack-value\` (64 B by default); the sealed tokens (${s.scale.sealedBytes} B here) always exceed it, so each connection's hash is a hashtable, at roughly 60-80 B of overhead per field on top of the ${s.scale.fieldBytes} B of fields and values. The listing index and the due-work schedule add about 140 B each per connection.`,
    );
  }
  if (s.stampede) {
    notes.push(
      "In the stampede, every caller is answered after the one refresh: the time beyond the provider's own latency is mostly the time two processes take to get through that many requests on these cores, which the fresh-token burst (its floor) shows on its own.",
    );
  }
  return notes;
}

function machine() {
  const model = cpus()[0]?.model ?? 'unknown';
  let nproc = String(cpus().length);
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // os.cpus() then
  }
  let redisVersion = 'unknown';
  try {
    redisVersion =
      /v=([\d.]+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    // not fatal
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim())
      commit += ' (src/ has uncommitted changes)';
  } catch {
    // not a checkout
  }
  const load = loadAverage();
  return {
    nproc,
    model,
    node: process.version,
    redis: redisVersion,
    date: new Date().toISOString(),
    commit,
    loadBefore: load,
  };
}

function table(rowsList) {
  const header = ['measure', 'broker', 'floor / baseline', 'ratio', 'target', 'verdict / detail'];
  const widths = header.map((h, i) =>
    Math.min(60, Math.max(h.length, ...rowsList.map((r) => String(r[i]).length))),
  );
  const line = (r) =>
    r
      .map((c, i) => String(c).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rowsList.map((r) => (r.slice(1).every((c) => c === '') ? `\n${r[0]}` : line(r))),
  ].join('\n');
}

function markdown(m, rowsList, seconds) {
  const md = [];
  md.push('# Benchmark results', '');
  md.push(
    'Written by `npm run bench` (bench/run.mjs). Each scenario runs beside its floor in the same run, so read the ratios: absolute figures drift with whatever else the machine does.',
    '',
  );
  md.push('## Machine', '');
  md.push(`- CPU: ${m.model}, \`nproc\` = ${m.nproc}`);
  md.push(
    `- Node ${m.node}, redis-server ${m.redis}; broker build: ${DIST === join(ROOT, 'dist') ? 'dist/' : DIST}`,
  );
  md.push(
    `- Date: ${m.date}; commit ${m.commit}; load average (1, 5, 15 min) before the run: ${m.loadBefore}, after: ${loadAverage()}${Number(m.loadBefore.split(' ')[0]) > 0.5 * Number(m.nproc) ? ' (other work was running: absolute figures are low and noisy; the ratios are steadier)' : ''}`,
  );
  md.push(
    `- Run took ${f0(seconds)} s${QUICK ? ' (--quick: short runs, figures are rough)' : ''}${PROFILE ? ' (--profile: the broker ran under --cpu-prof, which slows it)' : ''}`,
    '',
  );
  md.push('## Results', '');
  md.push(
    '| measure | broker | floor / baseline | ratio | target | verdict / detail |',
    '|---|---|---|---|---|---|',
  );
  for (const r of rowsList) {
    if (r.slice(1).every((c) => c === '')) md.push(`| **${r[0]}** | | | | | |`);
    else md.push(`| ${r.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  md.push('', '## How it is measured', '');
  md.push(
    `- Everything runs on loopback on this machine: a private \`redis-server\` (no persistence) on a free port, the broker as a real process (\`node dist/main.js\`, \`NODE_OPTIONS=${DEPLOYED_NODE_OPTIONS || '(none)'}\` as \`npm start\` and the Dockerfile run it, \`NODE_ENV=production\`, \`LOG_LEVEL=warn\`, \`RATE_LIMIT_PER_MINUTE=0\`), a fake provider (bench/fake-provider.mjs) and the load generators (in the bench process: autocannon for the closed-loop runs, and a paced open-loop generator, \`paced\` in bench/lib.mjs, for the fixed-rate runs). With 2 cores, the load generator and Redis take a large share of the CPU: the floor shows what is left for any Node service.`,
    `- **Token API**: ${CONNECTIONS} connections imported with \`PUT\` (access token ${ACCESS_BYTES} B, refresh token ${REFRESH_BYTES} B, valid 24 h), ${CLIENTS} closed-loop clients (keep-alive), each request for a random connection, ${T.max / 1000} s after a ${T.warm / 1000} s warm-up. The **floor** (bench/floor.mjs, its own process) is a bare Express 5 app doing one ioredis \`GET\` of a JSON value as large as a broker record (${results.scenarios.token?.recordBytes ?? 'n/a'} B) and answering the same JSON shape: no key check, no decryption, no metrics. In a closed loop at saturation, latency is clients ÷ throughput, so p99 there mostly mirrors throughput; the fixed-rate runs compare latency below saturation, at half and at a quarter of the floor's maximum (${T.fixed / 1000} s each, in alternating slices). They are paced open loop: requests evenly spaced in time (request i due at i ÷ rate), a 1 ms timer issuing every request that has come due on a pool of 64 keep-alive sockets opened beforehand, whatever the server's answers; each request's latency runs from its intended start to the end of its response, so a stalled server shows in the figures instead of slowing the load (no coordinated omission). That includes the generator's timer lag (Node's timers have 1 ms granularity: about 0.6 ms at the median, shown beside the rows); if the generator itself falls behind (over 5 % of requests issued more than 5 ms late), the rows say so. autocannon's \`overallRate\` is not used for them: it caps each connection per second (a counter reset every second), so each of the ${CLIENTS} connections fires its second's quota back-to-back at the start of every second, a saturated burst each second rather than a rate below saturation. Percentiles are computed from every 2xx response's own time (sub-millisecond).`,
    `- **Refresh stampede**: two broker processes, ${STAMPEDE_CALLERS} callers (half on each) ask at the same moment for one connection whose token is stale (valid 60 s, inside \`REFRESH_MARGIN\`); the fake provider answers its token endpoint after ${PROVIDER_DELAY_MS} ms. Each caller has its own raw keep-alive TCP socket, opened beforehand and kept from one burst to the next (\`prepareBurst\` in bench/lib.mjs); every request's bytes are built beforehand, then all ${STAMPEDE_CALLERS} are written back to back, one per socket, at one moment, and each caller's latency runs from that moment to the end of its response (read with the same minimal HTTP/1.1 parser as the paced generator: no client objects created or parsing done by an HTTP client library during the burst). The write loop's own duration is shown beside the row. One forced refresh on each process and one unmeasured stampede (their own connections) go first, so neither process's first refresh (cold JIT, first use of its HTTP client) is in the figures; then ${STAMPEDE_ROUNDS} measured rounds, one connection each; the worst round is shown. "callers p99 − provider latency" subtracts the nominal ${PROVIDER_DELAY_MS} ms; the provider's observed latency (from its receiving the token request to the end of its response, as it records it) is shown beside it. Its floor is the same burst of ${STAMPEDE_CALLERS} callers for a fresh token (no refresh), on the same sockets, after an unmeasured one: what absorbing that many requests at once costs the broker by itself. Beside it, the same burst against two bare floor processes (bench/floor.mjs: Express 5 + one ioredis GET), after an unmeasured one: what absorbing it costs any Node service on these cores, the floor the "≤ floor" row compares with (latency targets read as no worse than the floor's). Both floors are measured as the stampede is: ${STAMPEDE_ROUNDS} bursts, the worst p99 kept.`,
    `- **Connect flow**: ${CLIENTS} concurrent loops, each phase ${T.phase / 1000} s: connect links from the internal API, then \`GET /auth\` with each link (a fresh browser: no cookie; answers 302 and sets the session cookie), then \`GET /callback\` with that cookie and the \`state\` (the fake provider's token endpoint answers at once; the broker stores the tokens and answers 303). "Redis" lists the Redis commands per request (INFO commandstats). No floor: there is no simpler thing doing the same work.`,
    `- **Scale**: ${SCALE_CONNECTIONS.toLocaleString('en')} more connections written through the broker's own ConnectionService from dist/ (as \`PUT\` does) and read once through it (the first read of a connection notes it for refresh-ahead, one Lua write; the token runs then compare steady-state reads). Bytes per connection = the growth of Redis \`used_memory\` ÷ ${SCALE_CONNECTIONS.toLocaleString('en')}: the record's hash, its entries in the listing index and in the due-work schedule. Then the token API over all connections (closed loop, then paced at the fixed rate, against the first 1,000 in alternating slices), and paging through \`GET /internal/connections?limit=1000\` with INFO commandstats showing what Redis ran (no \`KEYS\`, no \`SCAN\`).`,
    "- **Memory**: VmRSS of the broker from /proc/<pid>/status, sampled every 200 ms during each run; the floor's for comparison. Brokers and the floor run with the `NODE_OPTIONS` the Dockerfile sets (`npm start` gets the same through `.npmrc`), as deployed; a third broker process runs with V8's default heap settings for comparison, through the same imports and the same load, alternating with the other two. The target, 150 MB, is read as decimal megabytes (143 MiB).",
  );
  const notes = [...readingNotes(), ...results.notes];
  if (notes.length) md.push('', '## Reading the figures', '', ...notes.map((n) => `- ${n}`));
  if (results.profile) md.push('', '## CPU profile (--profile)', '', '```', results.profile, '```');
  md.push('');
  return md.join('\n');
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const started = performance.now();
  const m = machine();
  log(`${m.model}, nproc ${m.nproc}, node ${m.node}, redis ${m.redis}; load average ${m.loadBefore}`);
  const redis = await startRedis();
  const fake = await startFakeProvider();
  const profileDir = PROFILE ? join(HERE, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const broker = await startBroker(
    'broker',
    redis.url,
    fake.url,
    profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  );
  await sleep(500);
  results.memory = { idle: rssMiB(broker.pid) };
  const env = { redis, fake, broker, fixedRate: 1000 };

  if (ONLY.has('token')) await scenarioToken(env);
  else {
    env.tokenIds = connectionIds('bench', CONNECTIONS);
    await importConnections(broker, env.tokenIds, 86_400);
  }
  if (ONLY.has('stampede')) await scenarioStampede(env);
  if (ONLY.has('connect')) await scenarioConnect(env);
  if (ONLY.has('scale')) await scenarioScale(env);
  // The proxy beside its floor (a GET straight to the fake API): bench/proxy.mjs, its figures in the notes.
  if (ONLY.has('proxy'))
    results.notes.push(
      `Proxy (bench/proxy.mjs): ${JSON.stringify(await (await import('./proxy.mjs')).runProxyBench({ quick: QUICK, log }))}`,
    );

  if (!broker.alive()) throw new Error(`the broker died during the run:\n${broker.output()}`);
  const brokerWarnings = broker.output().trim();
  if (brokerWarnings)
    results.notes.push(
      `The broker wrote (LOG_LEVEL=warn): ${brokerWarnings.split('\n').slice(-3).join(' / ').slice(0, 600)}`,
    );
  if (profileDir) {
    const since = Date.now();
    await broker.stop(10_000);
    const newest = readdirSync(profileDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(profileDir, f))
      .filter((f) => statSync(f).mtimeMs >= since - 60_000)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (newest) {
      const { summarise } = await import('./profile-summary.mjs');
      results.profile = `${newest}\n${summarise(newest, 25)}`;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const rowsList = rows();
  console.log(`\n${table(rowsList)}\n`);
  console.log(`machine: ${m.model}, nproc ${m.nproc}, node ${m.node}; ${f0(seconds)} s`);
  if (results.profile) console.log(`\nCPU profile, top self time:\n${results.profile}`);
  if (!flag('no-write')) {
    // Sections other scripts keep in the file (bench/audit.mjs) survive the rewrite.
    const previous = existsSync(join(HERE, 'results.md'))
      ? readFileSync(join(HERE, 'results.md'), 'utf8')
      : '';
    const kept = previous.match(/<!-- audit\.mjs -->[\s\S]*<!-- \/audit\.mjs -->/)?.[0];
    writeFileSync(
      join(HERE, 'results.md'),
      `${markdown(m, rowsList, seconds).trimEnd()}${kept ? `\n\n${kept}` : ''}\n`,
    );
    console.log('written: bench/results.md');
  }
  redis.client.disconnect();
  agent.destroy();
  process.exit(0);
}

await main();
