// The connect flow of two broker builds side by side: `node bench/connect-ab.mjs --a=<dist dir>
// --b=<dist dir> [--slices=6] [--flows=300]`. Both brokers run at once on one Redis, with one fake
// provider; in alternating slices (A B B A …) each completes `flows` connects (`GET /auth` then
// `GET /callback`, `--clients` browsers at a time, 50 by default), so whatever else the machine
// does falls on both alike.
// Per step and build: the median rate and median latency over the slices, and the CPU the broker
// and Redis spent per request (user + system, /proc), which holds better than rates under load.
// `--redis-delay-ms=1` puts a proxy between the brokers and Redis that holds every chunk that
// long each way, as a network between them would: what each round trip then costs shows.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuSeconds,
  drive,
  freePort,
  installCleanup,
  makeAgent,
  percentile,
  request,
  startBrokerProcess,
  startChild,
  startRedis,
  waitUntil,
} from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const arg = (name, fallback) =>
  process.argv
    .slice(2)
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3) ?? fallback;
const BUILDS = { A: resolve(ROOT, arg('a', 'dist')), B: resolve(ROOT, arg('b', 'dist')) };
const SLICES = Number(arg('slices', '6'));
const FLOWS = Number(arg('flows', '300'));
const REDIS_DELAY_MS = Number(arg('redis-delay-ms', '0'));
const CLIENTS = Number(arg('clients', '50'));
const PROVIDER = 'bexio';
const RETURN_TO = 'https://app.example.com/integrations';
const INTERNAL_KEY = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${INTERNAL_KEY}` };
const agent = makeAgent(256);
const log = (line) => console.log(`connect-ab: ${line}`);

installCleanup(15 * 60_000);

async function startFake() {
  const port = await freePort();
  const proc = startChild('fake-provider', process.execPath, [join(HERE, 'fake-provider.mjs')], {
    env: { PATH: process.env.PATH, PORT: String(port) },
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'fake provider',
    async () => (await request(agent, `${url}/_stats`)).status === 200,
    10_000,
    proc,
  );
  return url;
}

function startBroker(name, dist, redisUrl, fakeUrl, secrets) {
  return startBrokerProcess({
    name,
    dist,
    redisUrl,
    agent,
    cwdPrefix: 'ob-connect-ab-',
    env: {
      ...secrets,
      INTERNAL_API_KEYS: INTERNAL_KEY,
      ALLOWED_RETURN_URLS: RETURN_TO,
      BEXIO_CLIENT_ID: 'bench-client',
      BEXIO_CLIENT_SECRET: 'bench-client-secret',
      BEXIO_AUTHORIZATION_URL: `${fakeUrl}/authorize`,
      BEXIO_TOKEN_URL: `${fakeUrl}/token`,
      BEXIO_REVOCATION_URL: `${fakeUrl}/revoke`,
    },
  });
}

/** A TCP proxy in front of Redis that delays every chunk by `delayMs` each way, in order. */
async function delayingProxy(redisPort, delayMs) {
  const server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    // No Nagle: a held chunk goes out when due, not after the peer's delayed ACK.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const relay = (from, to) =>
      from.on('data', (chunk) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
    relay(client, upstream);
    relay(upstream, client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return `redis://127.0.0.1:${server.address().port}`;
}

function cookieHeader(setCookie) {
  return (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
    .map((c) => c.split(';')[0])
    .join('; ');
}

/** One slice on one broker: FLOWS links, then their /auth, then their /callback, each step timed. */
async function slice(broker, redisPid, tag) {
  // Sockets of its own: one idle through the other build's slice may be closed by the server.
  const agent = makeAgent(CLIENTS * 2);
  try {
    return await sliceOn(agent, broker, redisPid, tag);
  } finally {
    agent.destroy();
  }
}

async function sliceOn(agent, broker, redisPid, tag) {
  const links = [];
  await drive({
    concurrency: CLIENTS,
    count: FLOWS,
    work: async (i) => {
      const res = await request(agent, `${broker.internalUrl}/internal/connect-sessions`, {
        method: 'POST',
        headers: AUTH,
        body: { provider: PROVIDER, connection_id: `${tag}-${i}`, return_to: RETURN_TO },
      });
      if (res.status !== 201) throw new Error(`connect-sessions answered ${res.status}`);
      links[i] = JSON.parse(res.body).url;
    },
  });
  const measure = async (work) => {
    const cpu0 = { broker: cpuSeconds(broker.pid), redis: cpuSeconds(redisPid) };
    const run = await drive({ concurrency: CLIENTS, count: FLOWS, work });
    if (run.failed > 0) throw new Error(`${tag}: ${run.failed} failed, first: ${run.failures[0]?.message}`);
    return {
      rate: run.rate,
      p50: percentile(run.latencies, 0.5),
      brokerCpuUs: ((cpuSeconds(broker.pid) - cpu0.broker) / run.done) * 1e6,
      redisCpuUs: ((cpuSeconds(redisPid) - cpu0.redis) / run.done) * 1e6,
    };
  };
  const flows = [];
  const auth = await measure(async (i) => {
    const res = await request(agent, links[i]);
    if (res.status !== 302) throw new Error(`/auth answered ${res.status}`);
    flows[i] = {
      cookie: cookieHeader(res.headers['set-cookie']),
      state: new URL(res.headers.location).searchParams.get('state'),
    };
  });
  const callback = await measure(async (i) => {
    const { cookie, state } = flows[i];
    const res = await request(
      agent,
      `${broker.publicUrl}/callback/${PROVIDER}?code=code-${i}&state=${encodeURIComponent(state)}`,
      { headers: { cookie } },
    );
    if (res.status !== 303) throw new Error(`/callback answered ${res.status}`);
  });
  return { auth, callback };
}

async function main() {
  const redis = await startRedis();
  const fakeUrl = await startFake();
  const secrets = {
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  };
  const redisUrl = REDIS_DELAY_MS > 0 ? await delayingProxy(redis.port, REDIS_DELAY_MS) : redis.url;
  const brokers = {
    A: await startBroker('broker-a', BUILDS.A, redisUrl, fakeUrl, secrets),
    B: await startBroker('broker-b', BUILDS.B, redisUrl, fakeUrl, secrets),
  };
  log(
    `A = ${BUILDS.A}, B = ${BUILDS.B}; ${SLICES} slices of ${FLOWS} flows each, ${CLIENTS} browsers; Redis ${REDIS_DELAY_MS} ms away each way`,
  );
  // Warm-up, unmeasured: JIT and connections of both.
  for (const name of ['A', 'B']) await slice(brokers[name], redis.proc.pid, `warm-${name}`);
  const results = { A: [], B: [] };
  for (let s = 0; s < SLICES; s++) {
    const order = s % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const name of order) {
      const r = await slice(brokers[name], redis.proc.pid, `s${s}-${name}`);
      results[name].push(r);
      log(
        `slice ${s} ${name}: /auth ${r.auth.rate.toFixed(0)}/s, callback ${r.callback.rate.toFixed(0)}/s (broker ${r.callback.brokerCpuUs.toFixed(0)} µs, redis ${r.callback.redisCpuUs.toFixed(0)} µs CPU per callback)`,
      );
    }
  }
  const med = (name, step, key) =>
    percentile(
      results[name].map((r) => r[step][key]),
      0.5,
    );
  console.log('\nmedians over the slices            A          B      B/A');
  for (const step of ['auth', 'callback']) {
    for (const [key, label] of [
      ['rate', `${step} /s`],
      ['p50', `${step} p50 latency ms`],
      ['brokerCpuUs', `${step} broker CPU µs/request`],
      ['redisCpuUs', `${step} Redis CPU µs/request`],
    ]) {
      const a = med('A', step, key);
      const b = med('B', step, key);
      console.log(
        `${label.padEnd(32)} ${a.toFixed(1).padStart(8)} ${b.toFixed(1).padStart(10)} ${(b / a).toFixed(2).padStart(8)}`,
      );
    }
  }
  for (const b of Object.values(brokers)) await b.stop();
  redis.client.disconnect();
  agent.destroy();
  process.exit(0);
}

await main();
