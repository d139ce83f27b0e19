// Helpers for the benchmark: child processes that never outlive the run, free ports, a private
// redis-server, a small keep-alive HTTP client, an evenly paced open-loop load generator,
// percentiles and /proc readings.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const children = new Set();
const tempDirs = new Set();

/** Kills every child still running (SIGKILL) and removes temporary directories. Synchronous. */
export function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Children die with the run, whichever way it ends; the whole run is bounded by `limitMs`. */
export function installCleanup(limitMs) {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping every child process`);
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    console.error('bench: failed:', error?.stack ?? error);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    console.error('bench: failed:', error?.stack ?? error);
    killAll();
    process.exit(1);
  });
  setTimeout(() => {
    console.error(`bench: still running after ${Math.round(limitMs / 1000)} s; giving up`);
    killAll();
    process.exit(1);
  }, limitMs).unref();
}

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * A port from 20000–32767, below Linux's ephemeral range: the port is bound again later by a child
 * (redis-server, a broker), and nothing binding port 0 or connecting out can take it in between.
 */
export async function freePort() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-32767 after 50 tries');
}

/**
 * Starts a child process that is killed when the run ends. Keeps the last few KB of its output,
 * shown when it dies early or fails to come up.
 */
export function startChild(name, command, args, { env, cwd } = {}) {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => children.delete(child));
  return {
    name,
    child,
    pid: child.pid,
    exited,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    /** SIGTERM, then SIGKILL after `graceMs`. */
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Waits until `check()` resolves true, or throws with the child's output after `timeoutMs`. */
export async function waitUntil(what, check, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && !proc.alive()) throw new Error(`${proc.name} exited while starting:\n${proc.output()}`);
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await sleep(50);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms${proc ? `:\n${proc.output()}` : ''}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A private redis-server on a free loopback port, no persistence unless `persistence` says otherwise
 * (redis-server options, e.g. ['--appendonly', 'yes']), its files in `dir` (a temporary directory
 * by default).
 */
export async function startRedis({
  persistence = ['--appendonly', 'no'],
  dir = tempDir('ob-bench-redis-'),
} = {}) {
  const port = await freePort();
  const proc = startChild('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    ...persistence,
    '--dir',
    dir,
  ]);
  const { default: Redis } = await import('ioredis');
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  await waitUntil(
    'redis-server',
    async () => {
      if (client.status !== 'ready') await client.connect().catch(() => undefined);
      return (await client.ping()) === 'PONG';
    },
    5000,
    proc,
  );
  return { port, url: `redis://127.0.0.1:${port}`, proc, client };
}

/**
 * A broker process (`dist`/main.js) on two free loopback ports (public and internal), answering once
 * its /readyz does. Its environment is only what `env` adds to what every bench broker has (loopback
 * hosts and ports, `redisUrl`, production, LOG_LEVEL=warn, no rate limit): a developer's REDIS_* or
 * provider variables must not leak in. cwd is an empty directory, so dotenv finds no .env of the
 * developer's.
 */
export async function startBrokerProcess({
  name,
  dist,
  redisUrl,
  env,
  agent,
  nodeArgs = [],
  cwdPrefix = 'ob-bench-cwd-',
}) {
  const port = await freePort();
  const internalPort = await freePort();
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(internalPort),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    ...env,
  };
  const proc = startChild(name, process.execPath, [...nodeArgs, join(dist, 'main.js')], {
    env: fullEnv,
    cwd: tempDir(cwdPrefix),
  });
  const internalUrl = `http://127.0.0.1:${internalPort}`;
  await waitUntil(
    `${name} /readyz`,
    async () => (await request(agent, `${internalUrl}/readyz`)).status === 200,
    20_000,
    proc,
  );
  return { ...proc, env: fullEnv, publicUrl: `http://127.0.0.1:${port}`, internalUrl };
}

/**
 * NODE_OPTIONS as the Dockerfile's ENV in `root` sets it (`npm start` gets the same through .npmrc),
 * if it does: the benches run their brokers as deployed.
 */
export function dockerfileNodeOptions(root) {
  try {
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const m = /NODE_OPTIONS=(?:"([^"]*)"|(\S+))/.exec(text);
    return m ? (m[1] ?? m[2]) : undefined;
  } catch {
    return undefined;
  }
}

/** A keep-alive HTTP client for hand-driven loops (lighter than fetch). */
export function makeAgent(maxSockets) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

export function request(agent, url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { ...headers };
    if (payload !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(payload);
    }
    const req = http.request(url, { method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Runs `work(i)` in `concurrency` loops until `count` items are done or `durationMs` passed. */
export async function drive({ concurrency, count = Infinity, durationMs = Infinity, work }) {
  let next = 0;
  const latencies = [];
  const failures = [];
  const started = performance.now();
  const deadline = started + durationMs;
  const loop = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        await work(i);
        latencies.push(performance.now() - t0);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (performance.now() - started) / 1000;
  return {
    done: latencies.length,
    failed: failures.length,
    failures,
    seconds,
    rate: latencies.length / seconds,
    latencies,
  };
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Resident set size of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples the RSS of `pid` every `everyMs` until stopped; answers the peak. */
export function rssSampler(pid, everyMs = 200) {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    const now = rssMiB(pid);
    if (now > peak) peak = now;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const now = rssMiB(pid);
      return Math.max(peak, Number.isNaN(now) ? 0 : now);
    },
  };
}

/** Parses INFO output into { key: value }. */
export function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** INFO commandstats as { command: calls }. */
export async function commandCalls(client) {
  const info = parseInfo(await client.info('commandstats'));
  const out = {};
  for (const [key, value] of Object.entries(info)) {
    const m = /^cmdstat_(.+)$/.exec(key);
    const calls = /calls=(\d+)/.exec(value);
    if (m && calls) out[m[1]] = Number(calls[1]);
  }
  return out;
}

export function diffCalls(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * Read and write system calls a process has made (syscr + syscw of /proc/<pid>/io: read/readv and
 * write/writev, which is how libuv moves socket bytes), a count that does not depend on what
 * else the machine does.
 */
export function ioSyscalls(pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return Number(/^syscr: (\d+)/m.exec(io)[1]) + Number(/^syscw: (\d+)/m.exec(io)[1]);
  } catch {
    return NaN;
  }
}

/** User + system CPU seconds a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * Reads HTTP/1.1 responses off one keep-alive socket, one at a time (one request in flight per
 * socket, no pipelining). A minimal parser: the status, a body of `content-length` bytes or chunked,
 * and whether the server closes the socket after it; cheap per response, for load generators that
 * share the cores with the server they measure.
 */
class ResponseReader {
  constructor() {
    this.buf = null;
    this.clear();
  }

  /** Forgets whatever is buffered. */
  clear() {
    this.buf = null;
    this.reset();
  }

  reset() {
    this.status = 0;
    this.close = false;
    this.bodyStart = -1;
    this.length = -1;
    this.chunked = false;
    this.used = 0;
  }

  /** Adds a chunk read off the socket; answers whether a whole response is now buffered. */
  push(chunk) {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    return this.complete();
  }

  /** Whether the buffer holds the whole response; sets `used` to its length. */
  complete() {
    const buf = this.buf;
    if (buf === null) return false;
    if (this.bodyStart < 0) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const text = buf.toString('latin1', 0, end).toLowerCase();
      this.status = Number(text.slice(9, 12));
      this.bodyStart = end + 4;
      const cl = /\r\ncontent-length: *(\d+)/.exec(text);
      this.chunked = !cl && /\r\ntransfer-encoding:[^\r]*chunked/.test(text);
      this.length = cl ? Number(cl[1]) : this.chunked ? -1 : 0;
      this.close = /\r\nconnection: *close/.test(text);
    }
    if (!this.chunked) {
      if (buf.length < this.bodyStart + this.length) return false;
      this.used = this.bodyStart + this.length;
      return true;
    }
    // Chunked: walk the chunk sizes up to the last (empty) chunk and the blank line after it.
    let pos = this.bodyStart;
    for (;;) {
      const eol = buf.indexOf('\r\n', pos);
      if (eol < 0) return false;
      const size = parseInt(buf.toString('latin1', pos, eol), 16);
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', eol);
        if (end < 0) return false;
        this.used = end + 4;
        return true;
      }
      pos = eol + 2 + size + 2;
      if (pos > buf.length) return false;
    }
  }

  /** The whole response's body (a chunked one put together), as a Buffer. */
  body() {
    if (!this.chunked) return this.buf.subarray(this.bodyStart, this.used);
    const parts = [];
    let pos = this.bodyStart;
    for (;;) {
      const eol = this.buf.indexOf('\r\n', pos);
      const size = parseInt(this.buf.toString('latin1', pos, eol), 16);
      if (!(size > 0)) return Buffer.concat(parts);
      parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
  }

  /** Drops the whole response read, keeping whatever came after it. */
  shift() {
    this.buf = this.used < this.buf.length ? this.buf.subarray(this.used) : null;
    this.reset();
  }
}

/**
 * Closed-loop load (autocannon): `connections` keep-alive clients, each sending its next GET as soon
 * as its last one is answered, for `durationMs`; `pathFor()` gives each request's path. Answers
 * { samples (ms, per 2xx: each response's own time, sub-millisecond, where autocannon's histogram
 * rounds to whole ms), statuses, seconds, errors, timeouts }.
 */
export async function closedLoop({ url, connections, durationMs, headers, pathFor }) {
  const samples = [];
  const statuses = {};
  const instance = autocannon({
    url,
    connections,
    duration: durationMs / 1000,
    headers,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          req.path = pathFor();
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
  return { samples, statuses, seconds: result.duration, errors: result.errors, timeouts: result.timeouts };
}

/** A request issued more than this long after its intended time counts as late (the generator's fault). */
const LATE_MS = 5;

/**
 * Open-loop load at an even pace: request i is due at `i / rate` s after the start, whatever the
 * server is doing, and its latency runs from that intended start to the end of its response (a
 * stalled server shows in the figures instead of slowing the load down: no coordinated omission).
 * A timer of about 1 ms issues every request that has come due, each on a free socket of a pool of
 * `sockets` keep-alive connections opened beforehand (one request in flight per socket, no
 * pipelining); a due request waits for a free socket if none is, and that wait counts in its latency.
 * Raw sockets and a minimal HTTP/1.1 response parser keep the generator's CPU per request low: it
 * shares the cores with the server it measures.
 *
 * Answers { samples (ms, per 2xx), statuses, errors, seconds, sent, late, lateShare, behind,
 * lagP50, lagP99, queued, cpuUs }. lagP50/lagP99: how long after its intended time the timer got
 * round to issuing a request (Node's timers have 1 ms granularity, so about 0.6 ms at the median
 * on an idle generator; it is part of every latency figure, alike for any target). `late` requests
 * were issued more than 5 ms after their intended time because the generator itself was busy (its
 * timer lag, not a wait for a socket); `behind` is true when that is over 5 % of them, and then the
 * figures are not to be trusted. `queued` requests found every socket busy (the server is slower
 * than the pace; their wait counts in their latency). `cpuUs` is this whole process's CPU per
 * request sent.
 */
export async function paced({
  url,
  rate,
  durationMs,
  headers = {},
  pathFor,
  sockets = 64,
  method = 'GET',
  timeoutMs = 10_000,
}) {
  if (!(rate > 0) || !(durationMs > 0)) throw new Error(`paced: bad rate ${rate} or duration ${durationMs}`);
  const target = new URL(url);
  const host = target.hostname;
  const port = Number(target.port) || 80;
  const head =
    `Host: ${target.host}\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n';
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  const samples = [];
  const statuses = {};
  const lags = new Float64Array(total);
  let errors = 0;
  let sent = 0;
  let done = 0;
  let late = 0;
  let queued = 0;
  let next = 0;
  let t0 = 0;
  let lastEnd = 0;
  let finished = false;
  let finish = () => undefined;
  const ended = new Promise((resolve) => {
    finish = resolve;
  });

  const pool = new Set();
  const idle = [];
  const waiting = []; // [index, intended] pairs, flattened
  let waitHead = 0;

  const complete = () => {
    done += 1;
    if (next >= total && done >= total && !finished) {
      finished = true;
      lastEnd = performance.now();
      finish();
    }
  };

  const dispatch = (conn, i, intended) => {
    conn.intended = intended;
    conn.socket.write(`${method} ${pathFor(i)} HTTP/1.1\r\n${head}`, 'latin1');
    sent += 1;
  };

  const release = (conn) => {
    if (waitHead < waiting.length) {
      const i = waiting[waitHead];
      const intended = waiting[waitHead + 1];
      waitHead += 2;
      if (waitHead === waiting.length) waiting.length = waitHead = 0;
      dispatch(conn, i, intended);
    } else {
      idle.push(conn);
    }
  };

  const failWaiting = () => {
    // No socket left to send on: what waits cannot be sent.
    while (waitHead < waiting.length) {
      waitHead += 2;
      errors += 1;
      complete();
    }
    waiting.length = waitHead = 0;
  };

  const reset = (conn) => {
    conn.intended = -1;
    conn.reader.clear();
  };

  const onData = (conn, chunk) => {
    if (conn.intended < 0) return; // nothing asked on this socket: nothing to read
    const reader = conn.reader;
    if (!reader.push(chunk)) return;
    const ms = performance.now() - conn.intended;
    const status = reader.status;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) samples.push(ms);
    const closing = reader.close;
    reader.shift();
    conn.intended = -1;
    complete();
    if (closing) conn.socket.destroy();
    else release(conn);
  };

  const open = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const conn = { socket, reader: new ResponseReader(), connected: false, intended: -1 };
      pool.add(conn);
      socket.setNoDelay(true);
      socket.on('data', (chunk) => onData(conn, chunk));
      socket.on('error', (error) => {
        if (!conn.connected) reject(error);
      });
      socket.once('connect', () => {
        conn.connected = true;
        resolve(conn);
      });
      socket.once('close', () => {
        pool.delete(conn);
        const at = idle.indexOf(conn);
        if (at >= 0) idle.splice(at, 1);
        if (conn.intended >= 0) {
          errors += 1;
          reset(conn);
          complete();
        }
        if (finished) return;
        // The server closed a keep-alive socket: open another in its place.
        if (conn.connected)
          open().then(
            (fresh) => (finished ? fresh.socket.destroy() : release(fresh)),
            () => {
              if (pool.size === 0) failWaiting();
            },
          );
        else if (pool.size === 0) failWaiting();
      });
    });

  const issue = (i, intended) => {
    if (idle.length > 0) dispatch(idle.shift(), i, intended);
    else if (pool.size === 0) {
      errors += 1;
      complete();
    } else {
      queued += 1;
      waiting.push(i, intended);
    }
  };

  // Every socket is open before the clock starts, so no handshake lands in the figures.
  const first = await Promise.allSettled(Array.from({ length: sockets }, open));
  const failed = first.find((r) => r.status === 'rejected');
  if (failed) {
    for (const conn of pool) conn.socket.destroy();
    throw new Error(`paced: cannot connect to ${url}: ${failed.reason?.message ?? failed.reason}`);
  }
  for (const r of first) idle.push(r.value);

  let timer;
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  const tick = () => {
    const now = performance.now();
    while (next < total) {
      const intended = t0 + next * interval;
      if (intended > now) break;
      const lag = now - intended;
      lags[next] = lag;
      if (lag > LATE_MS) late += 1;
      const i = next;
      next += 1;
      issue(i, intended);
    }
    if (next < total) timer = setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
  };
  tick();
  // Whatever is still unanswered `timeoutMs` after the last request is due counts as an error.
  const timeout = new Promise((resolve) => {
    const guard = setTimeout(resolve, durationMs + timeoutMs);
    ended.then(() => clearTimeout(guard));
  });
  await Promise.race([ended, timeout]);
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  if (!finished) {
    errors += total - done;
    finished = true;
    lastEnd = performance.now();
  }
  for (const conn of pool) conn.socket.destroy();
  const seconds = (lastEnd - t0) / 1000;
  const lateShare = late / total;
  return {
    samples,
    statuses,
    errors,
    seconds,
    sent,
    late,
    lateShare,
    behind: lateShare > 0.05,
    lagP50: percentile(lags, 0.5),
    lagP99: percentile(lags, 0.99),
    queued,
    cpuUs: (cpu.user + cpu.system) / Math.max(1, sent),
  };
}

/**
 * Simultaneous callers, each on its own raw keep-alive socket: `count` sockets opened beforehand,
 * spread round-robin over `targets` (base URLs), and reused from one `fire` to the next, so each
 * burst measures the callers' requests, not handshakes. Answers { count, fire(pathFor), close() }.
 *
 * `fire(pathFor)` builds every caller's request first (`pathFor(i, target)`: caller i's path,
 * `target` its index in `targets`), then at one moment t0 writes them all back to back, one per
 * socket, and times each response's end from t0 with the minimal parser `paced` uses (no client
 * objects made during the burst, nothing parsed but the status line, the length and the body).
 * Answers { answers, writeMs, startedAt, failed }: per caller { target, ms, status, body (string) },
 * status 0 and ms NaN for a caller whose socket closed or that had no answer within `timeoutMs`;
 * `writeMs` is how long writing every request took (the last write's end − t0); `startedAt` is t0
 * in ms since the epoch (performance.timeOrigin + t0, comparable with another process's clock on
 * this machine). Sockets a server closed, or idle for over `maxIdleMs` (a server's keep-alive
 * timeout may be about to close them), are opened again before t0.
 */
export async function prepareBurst({
  targets,
  count,
  headers = {},
  method = 'GET',
  timeoutMs = 30_000,
  maxIdleMs = 2000,
}) {
  const bases = targets.map((t) => new URL(t));
  const heads = bases.map(
    (u) =>
      ` HTTP/1.1\r\nHost: ${u.host}\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      '\r\n',
  );
  let round = null;
  const conns = Array.from({ length: count }, (_, i) => ({
    index: i,
    target: i % bases.length,
    socket: null,
    open: false,
    lastUsed: 0,
    reader: new ResponseReader(),
  }));

  const settle = (conn, status, body) => {
    const r = round;
    if (r === null || r.status[conn.index] !== -1) return;
    r.ms[conn.index] = status === 0 ? NaN : performance.now() - r.t0;
    r.status[conn.index] = status;
    r.bodies[conn.index] = body;
    r.left -= 1;
    if (r.left === 0) r.done();
  };

  const connect = (conn) =>
    new Promise((resolve, reject) => {
      const { hostname, port } = bases[conn.target];
      const socket = net.connect({ host: hostname, port: Number(port) || 80 });
      conn.socket = socket;
      conn.open = false;
      conn.reader.clear();
      socket.setNoDelay(true);
      socket.on('data', (chunk) => {
        if (conn.socket !== socket || round === null || round.status[conn.index] !== -1) return;
        const reader = conn.reader;
        if (!reader.push(chunk)) return;
        const status = reader.status;
        const body = reader.body();
        const closing = reader.close;
        reader.shift();
        conn.lastUsed = performance.now();
        settle(conn, status, body);
        if (closing) socket.destroy();
      });
      socket.on('error', (error) => {
        if (!conn.open) reject(error);
      });
      socket.once('connect', () => {
        conn.open = true;
        conn.lastUsed = performance.now();
        resolve();
      });
      socket.once('close', () => {
        if (conn.socket !== socket) return;
        conn.open = false;
        settle(conn, 0, undefined);
      });
    });

  const close = () => {
    for (const conn of conns) {
      conn.socket?.destroy();
      conn.open = false;
    }
  };

  const opened = await Promise.allSettled(conns.map(connect));
  const failed = opened.find((r) => r.status === 'rejected');
  if (failed) {
    close();
    throw new Error(`burst: cannot connect: ${failed.reason?.message ?? failed.reason}`);
  }

  return {
    count,
    close,
    async fire(pathFor) {
      if (round !== null) throw new Error('burst: fire() while a burst is under way');
      const now = performance.now();
      const stale = conns.filter((c) => !c.open || now - c.lastUsed > maxIdleMs);
      for (const conn of stale) conn.socket.destroy();
      await Promise.all(stale.map(connect));
      // Every request's bytes are ready before t0: the write loop does nothing else.
      const requests = conns.map((c, i) =>
        Buffer.from(`${method} ${pathFor(i, c.target)}${heads[c.target]}`, 'latin1'),
      );
      for (const conn of conns) conn.reader.clear();
      let done = () => undefined;
      const finished = new Promise((resolve) => {
        done = resolve;
      });
      round = {
        t0: 0,
        ms: new Float64Array(count).fill(NaN),
        status: new Int16Array(count).fill(-1),
        bodies: new Array(count),
        left: count,
        done,
      };
      const r = round;
      r.t0 = performance.now();
      for (let i = 0; i < count; i++) conns[i].socket.write(requests[i]);
      const writeMs = performance.now() - r.t0;
      const guard = setTimeout(done, timeoutMs);
      await finished;
      clearTimeout(guard);
      round = null;
      const answers = conns.map((c, i) => {
        if (r.status[i] === -1) {
          // No answer in time: this socket's late answer must not land in the next burst.
          c.socket.destroy();
          c.open = false;
          r.status[i] = 0;
        }
        return {
          target: c.target,
          ms: r.ms[i],
          status: r.status[i],
          body: r.bodies[i]?.toString('utf8'),
        };
      });
      return {
        answers,
        writeMs,
        startedAt: performance.timeOrigin + r.t0,
        failed: answers.filter((a) => a.status !== 200).length,
      };
    },
  };
}

/** One burst of `count` callers on sockets opened beforehand (see prepareBurst), then closes them. */
export async function burst({ targets, count, pathFor, headers, method, timeoutMs }) {
  const b = await prepareBurst({ targets, count, headers, method, timeoutMs });
  try {
    return await b.fire(pathFor);
  } finally {
    b.close();
  }
}

/** How many connections the listing index holds: its chunks' sizes (src/connections/listing-index.ts). */
export async function indexedCount(client, prefix = 'ob:') {
  const bounds = await client.zrange(`${prefix}{connections}:dir`, 0, -1);
  const sizes = await Promise.all(bounds.map((b) => client.zcard(`${prefix}{connections}:c:${b}`)));
  return sizes.reduce((n, x) => n + x, 0) + (await client.zcard(`${prefix}connections`));
}

/**
 * A chunked sorted set of the broker's (the listing index, tag `connections`, or the due-work
 * schedule, tag `schedule`: src/connections/listing-index.ts, due-schedule.ts): its members, how
 * many are due at `now`, its bytes (MEMORY USAGE of chunks and directories), a sample of members.
 */
export async function chunkedStats(client, tag, now = Date.now(), prefix = 'ob:') {
  const usage = async (key) => Number((await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
  const bounds = await client.zrange(`${prefix}{${tag}}:dir`, 0, -1);
  const chunks = bounds.map((b) => `${prefix}{${tag}}:c:${b}`);
  const [sizes, dues, bytes] = await Promise.all([
    Promise.all(chunks.map((c) => client.zcard(c))),
    Promise.all(chunks.map((c) => client.zcount(c, '-inf', now))),
    Promise.all([...chunks, `${prefix}{${tag}}:dir`, `${prefix}{${tag}}:due`].map(usage)),
  ]);
  const sum = (xs) => xs.reduce((n, x) => n + x, 0);
  const sample = chunks.length > 0 ? await client.zrange(chunks[0], 0, 999) : [];
  return { members: sum(sizes), due: sum(dues), memory: sum(bytes), sample };
}
