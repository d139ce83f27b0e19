#!/usr/bin/env node
// Soak test (not part of `npm test`): SOAK_MINUTES (default 10) of mixed load against two broker
// processes (`node dist/main.js`) on one private Redis that is restarted twice, with a fake
// provider that fails 5% of token requests. Reports requests, errors by code, latency, RSS over
// time, recovery after each Redis restart, and checks at the end that every connection still
// decrypts (with the broker's own key ring code) to a token the provider issued.
//
//   npm run soak                  # builds, then runs 10 minutes
//   SOAK_MINUTES=2 npm run soak
//
// Needs redis-server on PATH. Writes the figures to test-artifacts/soak-<time>.json as well.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const express = require('express');
const Redis = require('ioredis');
const { loadConfig } = require(join(ROOT, 'dist/config/load-config.js'));
const { KeyRing } = require(join(ROOT, 'dist/connections/key-ring.js'));
const { openSecrets } = require(join(ROOT, 'dist/connections/connection-secrets.js'));
const { ConnectionStore } = require(join(ROOT, 'dist/connections/connection-store.js'));
const { RedisKeys } = require(join(ROOT, 'dist/connections/redis-keys.js'));

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const DURATION_MS = Math.round(MINUTES * 60_000);
const WORKERS = Number(process.env.SOAK_WORKERS ?? 8);
const FAILURE_RATE = 0.05;
const INITIAL_CONNECTIONS = 60;
const RSS_EVERY_MS = Math.max(5000, Math.min(30_000, DURATION_MS / 20));
const INTERNAL_KEY = randomBytes(24).toString('hex');

const log = (...args) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s]`, ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let t0 = Date.now();

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- Redis (private, persistent)

class SoakRedis {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
  }
  async start() {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const client = new Redis({
        port: this.port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') return client.disconnect();
      } catch {
        // not up yet
      }
      client.disconnect();
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  }
  /** A crash: SIGKILL, then whatever the append-only file holds. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGKILL');
    });
  }
}

// ---------------------------------------------------------------- fake provider (rotating, 5% failures)

function startFakeProvider() {
  const live = new Set();
  const issued = new Set();
  const stats = { token: 0, refresh: 0, code: 0, injected: 0, invalid_grant: 0 };
  let n = 0;
  const mint = () => {
    n += 1;
    const access = `at-${n}-${randomBytes(6).toString('hex')}`;
    const refresh = `rt-${n}-${randomBytes(6).toString('hex')}`;
    live.add(refresh);
    issued.add(access);
    // 320 s of life: stale 20 s after issue (REFRESH_MARGIN 300), so refreshes happen by themselves.
    return { access_token: access, refresh_token: refresh, token_type: 'bearer', expires_in: 320 };
  };
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post('/token', (req, res) => {
    stats.token += 1;
    const grant = req.body.grant_type;
    if (Math.random() < FAILURE_RATE) {
      stats.injected += 1;
      return res.status(503).json({ error: 'temporarily_unavailable' });
    }
    if (grant === 'authorization_code') {
      stats.code += 1;
      return res.json(mint());
    }
    if (grant === 'refresh_token') {
      stats.refresh += 1;
      if (!live.delete(req.body.refresh_token)) {
        stats.invalid_grant += 1;
        return res.status(400).json({ error: 'invalid_grant' });
      }
      return res.json(mint()); // rotation: the presented refresh token died above
    }
    res.status(400).json({ error: 'unsupported_grant_type' });
  });
  app.post('/revoke', (_req, res) => res.status(200).end());
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}`, server, mint, issued, stats });
    });
  });
}

// ---------------------------------------------------------------- broker processes

async function startBroker(env, publicPort) {
  const internalPort = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist/main.js')], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, ...env, PORT: String(publicPort), INTERNAL_PORT: String(internalPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const broker = {
    child,
    publicUrl: `http://127.0.0.1:${publicPort}`,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    logLines: 0,
    errorLines: 0,
    unstored: 0,
    storedLate: 0,
    lost: 0,
  };
  const count = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (!line) continue;
      broker.logLines += 1;
      if (/"level":("error"|"fatal"|50|60)/.test(line)) broker.errorLines += 1;
      if (line.includes('refresh answered by the provider but not stored')) broker.unstored += 1;
      if (line.includes('refresh stored late')) broker.storedLate += 1;
      if (line.includes('refresh lost')) broker.lost += 1;
    }
  };
  child.stdout.on('data', count);
  child.stderr.on('data', count);
  child.on('exit', (code, signal) => {
    broker.exit = { code, signal };
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${broker.publicUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok)
        return broker;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error('broker did not start');
}

/** The V8 heap in use, from the broker's own /metrics (prom-client's default metrics). */
async function heapUsedMb(broker) {
  try {
    const text = await (
      await fetch(`${broker.internalUrl}/metrics`, { signal: AbortSignal.timeout(2000) })
    ).text();
    const m = /^(?:oauth_broker_)?nodejs_heap_size_used_bytes (\S+)/m.exec(text);
    return m ? Math.round(Number(m[1]) / 1048576) : null;
  } catch {
    return null;
  }
}

function rssMb(broker) {
  try {
    const status = readFileSync(`/proc/${broker.child.pid}/status`, 'utf8');
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- HTTP clients

async function api(broker, path, init = {}) {
  const headers = { authorization: `Bearer ${INTERNAL_KEY}` };
  if (init.body) headers['content-type'] = 'application/json';
  const res = await fetch(`${broker.internalUrl}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body ? JSON.stringify(init.body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** The browser journey: link from one process, /auth and /callback on the other. */
async function connect(linkFrom, browseOn, connectionId) {
  const link = await api(linkFrom, '/internal/connect-sessions', {
    method: 'POST',
    body: { provider: 'jobber', connection_id: connectionId },
  });
  if (link.status !== 201) return { status: link.status, code: link.body?.code ?? `http_${link.status}` };
  const url = new URL(link.body.url);
  const auth = await fetch(`${browseOn.publicUrl}${url.pathname}${url.search}`, {
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  });
  await auth.text();
  if (auth.status !== 302) return { status: auth.status, code: `auth_${auth.status}` };
  const cookie = auth.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const state = new URL(auth.headers.get('location')).searchParams.get('state');
  const callback = await fetch(
    `${browseOn.publicUrl}/callback/jobber?code=c-${connectionId}&state=${state}`,
    {
      headers: { cookie, accept: 'text/html' },
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
    },
  );
  const page = await callback.text();
  if (callback.status === 200) return { status: 200 };
  return {
    status: callback.status,
    code:
      callback.status === 502 || /could not be reached/.test(page)
        ? 'callback_provider_unavailable'
        : `callback_${callback.status}`,
  };
}

// ---------------------------------------------------------------- the run

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ob-soak-'));
  const redis = new SoakRedis(await freePort(), dir);
  await redis.start();
  const fake = await startFakeProvider();
  const publicPort = await freePort();
  const env = {
    PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    HOST: '127.0.0.1',
    INTERNAL_HOST: '127.0.0.1',
    REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    SESSION_SECRET: randomBytes(32).toString('hex'),
    TOKEN_ENCRYPTION_KEYS: `soak1:${randomBytes(32).toString('base64')}`,
    INTERNAL_API_KEYS: INTERNAL_KEY,
    JOBBER_CLIENT_ID: 'soak-client',
    JOBBER_CLIENT_SECRET: 'soak-secret',
    JOBBER_AUTHORIZATION_URL: `${fake.url}/authorize`,
    JOBBER_TOKEN_URL: `${fake.url}/token`,
    JOBBER_REVOCATION_URL: `${fake.url}/revoke`,
    PROVIDER_TIMEOUT: '2',
    SWEEP_INTERVAL: '5',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  };
  const brokers = [await startBroker(env, publicPort), await startBroker(env, await freePort())];
  t0 = Date.now();
  log(
    `soak: ${MINUTES} min, ${WORKERS} workers, two brokers (pids ${brokers.map((b) => b.child.pid).join(', ')}), redis :${redis.port}`,
  );

  // Seed connections by import.
  const ids = [];
  for (let i = 0; i < INITIAL_CONNECTIONS; i++) {
    const id = `soak-${String(i).padStart(4, '0')}`;
    const t = fake.mint();
    const res = await api(brokers[i % 2], `/internal/connections/jobber/${id}`, {
      method: 'PUT',
      body: { access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in },
    });
    if (res.status !== 201) throw new Error(`seed import failed: ${res.status}`);
    ids.push(id);
  }

  const stats = { requests: 0, byKind: {}, outcomes: {}, latencies: [], slowest: {}, failures: [] };
  const record = (kind, status, code, ms) => {
    stats.requests += 1;
    stats.byKind[kind] = (stats.byKind[kind] ?? 0) + 1;
    const ok = status === 200 || status === 201 || status === 204;
    const key = ok ? 'ok' : `${status} ${code ?? ''}`.trim();
    stats.outcomes[key] = (stats.outcomes[key] ?? 0) + 1;
    if (!ok) stats.failures.push({ at: Date.now(), key });
    stats.slowest[kind] = Math.max(stats.slowest[kind] ?? 0, ms);
    if (stats.latencies.length < 2_000_000) stats.latencies.push(ms);
  };
  const rss = [];
  const sampleRss = async () => {
    const t_s = Math.round((Date.now() - t0) / 1000);
    const rss_mb = brokers.map(rssMb);
    rss.push({ t_s, rss_mb, heap_used_mb: await Promise.all(brokers.map(heapUsedMb)) });
  };
  await sampleRss();
  const rssTimer = setInterval(sampleRss, RSS_EVERY_MS);

  let running = true;
  let nextId = INITIAL_CONNECTIONS;
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    while (running) {
      const broker = brokers[Math.floor(Math.random() * 2)];
      const other = brokers.find((b) => b !== broker);
      const roll = Math.random();
      const started = Date.now();
      try {
        if (roll < 0.7) {
          const res = await api(broker, `/internal/connections/jobber/${pick(ids)}/token`);
          record('token', res.status, res.body?.code, Date.now() - started);
        } else if (roll < 0.8) {
          const res = await api(broker, `/internal/connections/jobber/${pick(ids)}/token?force_refresh=true`);
          record('force_refresh', res.status, res.body?.code, Date.now() - started);
        } else if (roll < 0.9) {
          // Half new connections, half reconnects of existing ones.
          const id = Math.random() < 0.5 ? `soak-${String(nextId++).padStart(4, '0')}` : pick(ids);
          const res = await connect(broker, other, id);
          record('connect', res.status, res.code, Date.now() - started);
          if (res.status === 200 && !ids.includes(id)) ids.push(id);
        } else if (roll < 0.95) {
          const res = await api(broker, `/internal/connections/jobber/${pick(ids)}`);
          record('metadata', res.status, res.body?.code, Date.now() - started);
        } else {
          const res = await api(broker, `/internal/connections?provider=jobber&limit=50`);
          record('list', res.status, res.body?.code, Date.now() - started);
        }
      } catch (error) {
        record(
          'error',
          0,
          error?.name === 'TimeoutError' ? 'client_timeout' : 'network_error',
          Date.now() - started,
        );
      }
      if (w === 0 && stats.requests % 1000 === 0) log(`${stats.requests} requests`);
      await sleep(5);
    }
  });

  // Two Redis crashes, at one third and two thirds of the run, each down for 2 s.
  const restarts = [];
  const chaos = (async () => {
    for (const at of [DURATION_MS / 3, (2 * DURATION_MS) / 3]) {
      await sleep(Math.max(0, t0 + at - Date.now()));
      if (!running) return;
      const down = Date.now();
      await redis.kill();
      log('redis killed');
      await sleep(2000);
      await redis.start();
      const up = Date.now();
      log('redis restarted');
      // Recovery: the first token answer 200 from each broker after Redis answered again.
      const recovered = await Promise.all(
        brokers.map(async (b) => {
          while (Date.now() - up < 30_000) {
            const res = await api(b, `/internal/connections/jobber/${ids[0]}/token?min_validity=0`).catch(
              () => ({ status: 0 }),
            );
            if (res.status === 200) return Date.now() - up;
            await sleep(20);
          }
          return -1; // never came back
        }),
      );
      restarts.push({
        at_s: Math.round((down - t0) / 1000),
        down_ms: up - down,
        recovered_ms_per_broker: recovered,
        window: [down, up + Math.max(...recovered)],
      });
      log(`service back ${recovered.join(' / ')} ms after Redis answered`);
    }
  })();

  await sleep(DURATION_MS);
  running = false;
  await Promise.all(workers);
  await chaos;
  clearInterval(rssTimer);
  await sampleRss();

  // Every connection still decrypts, with the broker's own key ring, to a token the provider issued.
  const config = loadConfig({ ...env, LOG_LEVEL: 'silent' });
  const keyRing = new KeyRing(config.encryptionKeys);
  const client = new Redis({ port: redis.port, host: '127.0.0.1' });
  const store = new ConnectionStore(client, new RedisKeys(config.redisKeyPrefix));
  const check = { connections: 0, decrypted: 0, decrypt_failed: 0, issued_by_provider: 0, token_api: {} };
  let cursor;
  do {
    const page = await store.list({ provider: 'jobber', cursor, limit: 500 });
    for (const record of page.connections) {
      check.connections += 1;
      try {
        const secrets = openSecrets(keyRing, record.provider, record.connection_id, record);
        check.decrypted += 1;
        if (fake.issued.has(secrets.access_token)) check.issued_by_provider += 1;
      } catch {
        check.decrypt_failed += 1;
      }
      const res = await api(
        brokers[check.connections % 2],
        `/internal/connections/jobber/${record.connection_id}/token?min_validity=0`,
      );
      const key = res.status === 200 ? '200' : `${res.status} ${res.body?.code}`;
      check.token_api[key] = (check.token_api[key] ?? 0) + 1;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  client.disconnect();

  // Graceful stop: SIGTERM, exit code 0.
  const exits = await Promise.all(
    brokers.map(
      (b) =>
        new Promise((resolve) => {
          if (b.exit) return resolve(b.exit);
          b.child.once('exit', (code, signal) => resolve({ code, signal }));
          b.child.kill('SIGTERM');
        }),
    ),
  );
  await redis.kill();
  fake.server.close();
  rmSync(dir, { recursive: true, force: true });

  // Failures outside the outages (from the kill to the last broker's recovery, plus 3 s).
  const inOutage = (t) => restarts.some((r) => t >= r.window[0] && t <= r.window[1] + 3000);
  const outsideOutages = {};
  for (const f of stats.failures)
    if (!inOutage(f.at)) outsideOutages[f.key] = (outsideOutages[f.key] ?? 0) + 1;
  for (const r of restarts) delete r.window;

  const sorted = stats.latencies.sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  const rssPerBroker = [0, 1].map((i) => rss.map((s) => s.rss_mb[i]).filter((v) => v !== null));
  const report = {
    minutes: MINUTES,
    workers: WORKERS,
    requests: stats.requests,
    requests_per_second: Math.round(stats.requests / (DURATION_MS / 1000)),
    by_kind: stats.byKind,
    outcomes: stats.outcomes,
    failures_outside_outages: outsideOutages,
    latency_ms: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted[sorted.length - 1] },
    slowest_ms_by_kind: stats.slowest,
    provider: fake.stats,
    redis_restarts: restarts,
    rss_mb: rss,
    rss_summary: rssPerBroker.map((v) => ({ first: v[0], max: Math.max(...v), last: v[v.length - 1] })),
    broker_log_lines: brokers.map((b) => ({
      lines: b.logLines,
      errors: b.errorLines,
      refresh_not_stored: b.unstored,
      stored_late: b.storedLate,
      refresh_lost: b.lost,
    })),
    final_check: check,
    exits,
  };
  console.log('\n=== soak report ===');
  console.log(
    `requests: ${report.requests} (${report.requests_per_second}/s) by kind ${JSON.stringify(report.by_kind)}`,
  );
  console.log(`outcomes: ${JSON.stringify(report.outcomes)}`);
  console.log(`failures outside the Redis outages: ${JSON.stringify(outsideOutages)}`);
  console.log(
    `latency ms: ${JSON.stringify(report.latency_ms)}; slowest by kind ${JSON.stringify(report.slowest_ms_by_kind)}`,
  );
  console.log(`provider: ${JSON.stringify(report.provider)}`);
  console.log(`redis restarts: ${JSON.stringify(report.redis_restarts)}`);
  console.log('memory MB over time (broker A / broker B):');
  for (const s of rss) {
    console.log(
      `  ${String(s.t_s).padStart(5)} s  rss ${s.rss_mb.join(' / ')}  heap used ${s.heap_used_mb.join(' / ')}`,
    );
  }
  console.log(
    `broker logs: ${JSON.stringify(report.broker_log_lines)} (refreshes the provider answered while Redis was down: stored late / lost)`,
  );
  console.log(`final check: ${JSON.stringify(check)}`);
  console.log(`exits after SIGTERM: ${JSON.stringify(exits)}`);
  const out = join(ROOT, 'test-artifacts');
  mkdirSync(out, { recursive: true });
  const file = join(out, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`written to ${file}`);

  const ok =
    check.decrypt_failed === 0 && check.decrypted === check.connections && exits.every((e) => e.code === 0);
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
