// The machinery of a token-API A/B run, shared by bench/ab.mjs (two builds) and bench/audit.mjs
// (one build, AUDIT off and on): two broker processes on one private Redis, seeded with the same
// connections, loaded in alternating short slices so both see the same machine, and the figures
// printed side by side.
import { randomBytes } from 'node:crypto';
import {
  closedLoop,
  cpuSeconds,
  drive,
  ioSyscalls,
  makeAgent,
  paced,
  percentile,
  request,
  startBrokerProcess,
} from './lib.mjs';

export const CLIENTS = 50;

/**
 * A/B settings and the secrets both brokers share: `auth` is what the load presents, `admin`
 * (an INTERNAL_API_KEYS key) what seeds the connections.
 */
export function createTokenAb({ slices, sliceMs, auth, redisPid }) {
  const key = randomBytes(32).toString('base64url');
  const admin = { authorization: `Bearer ${key}` };
  const shared = {
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    INTERNAL_API_KEYS: key,
  };
  const load = auth ?? admin;
  const agent = makeAgent(64);

  /**
   * One broker of the build in `dist` on `redisUrl`, `env` added to the bench's own, `nodeArgs`
   * before the script (e.g. --cpu-prof), once /readyz answers.
   */
  async function startBroker(name, dist, redisUrl, env = {}, nodeArgs = []) {
    const broker = await startBrokerProcess({
      name,
      dist,
      redisUrl,
      nodeArgs,
      env: {
        ...shared,
        ALLOWED_RETURN_URLS: 'https://app.example.com',
        BEXIO_CLIENT_ID: 'bench-client',
        BEXIO_CLIENT_SECRET: 'bench-client-secret',
        BEXIO_TOKEN_URL: 'http://127.0.0.1:9/token',
        BEXIO_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
        ...env,
      },
      agent,
      cwdPrefix: 'ob-ab-cwd-',
    });
    return { ...broker, url: broker.internalUrl };
  }

  /** The same bexio connections `ids` imported on each of `targets` (each its own prefix, or one). */
  async function seed(targets, ids) {
    const put = await drive({
      concurrency: 20,
      count: ids.length * targets.length,
      work: async (i) => {
        const target = targets[Math.floor(i / ids.length)];
        const res = await request(agent, `${target.url}/internal/connections/bexio/${ids[i % ids.length]}`, {
          method: 'PUT',
          headers: admin,
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
  }

  /** One slice on `target`: paced open loop at `rate` req/s, or closed loop (CLIENTS clients) without. */
  async function slice(target, ids, rate) {
    const tokenPath = () =>
      `/internal/connections/bexio/${ids[Math.floor(Math.random() * ids.length)]}/token`;
    const cpu0 = cpuSeconds(target.pid);
    const io0 = ioSyscalls(target.pid);
    // Redis serves one broker at a time here: its CPU over the slice is this broker's doing.
    const redis0 = redisPid ? cpuSeconds(redisPid) : NaN;
    if (rate) {
      const r = await paced({
        url: target.url,
        rate,
        durationMs: sliceMs,
        headers: load,
        pathFor: tokenPath,
      });
      const bad = r.sent - r.samples.length;
      if (bad > 0 || r.errors > 0)
        throw new Error(
          `${target.name}: ${JSON.stringify(r.statuses)}, ${r.errors} errors (paced at ${rate} req/s)`,
        );
      return {
        samples: r.samples,
        seconds: r.seconds,
        cpu: cpuSeconds(target.pid) - cpu0,
        io: ioSyscalls(target.pid) - io0,
        redisCpu: cpuSeconds(redisPid) - redis0,
        sent: r.sent,
        late: r.late,
        lagP50: r.lagP50,
      };
    }
    const { samples, statuses, seconds, errors } = await closedLoop({
      url: target.url,
      connections: CLIENTS,
      durationMs: sliceMs,
      headers: load,
      pathFor: tokenPath,
    });
    const bad = Object.entries(statuses).reduce(
      (n, [status, count]) => n + (status === '200' ? 0 : count),
      0,
    );
    if (bad > 0 || errors > 0) throw new Error(`${target.name}: ${bad} non-200, ${errors} errors`);
    return {
      samples,
      seconds,
      cpu: cpuSeconds(target.pid) - cpu0,
      io: ioSyscalls(target.pid) - io0,
      redisCpu: cpuSeconds(redisPid) - redis0,
    };
  }

  /** `slices` alternating slices on the two targets; each one's figures, B's with its per-pair medians. */
  async function compare(targets, ids, rate) {
    const acc = targets.map(() => ({
      samples: [],
      seconds: 0,
      cpu: 0,
      io: 0,
      redisCpu: 0,
      sent: 0,
      late: 0,
      lagP50: [],
      slices: [],
    }));
    for (let i = 0; i < slices; i++) {
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        const r = await slice(targets[k], ids, rate);
        acc[k].slices.push({ rps: r.samples.length / r.seconds, cpuUs: (r.cpu / r.samples.length) * 1e6 });
        acc[k].samples.push(...r.samples);
        acc[k].seconds += r.seconds;
        acc[k].cpu += r.cpu;
        acc[k].io += r.io;
        acc[k].redisCpu += r.redisCpu;
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
      rps: a.samples.length / a.seconds,
      p50: percentile(a.samples, 0.5),
      p99: percentile(a.samples, 0.99),
      cpuUs: (a.cpu / a.samples.length) * 1e6,
      ioPerRequest: a.io / a.samples.length,
      redisCpuUs: (a.redisCpu / a.samples.length) * 1e6,
      lateShare: rate ? a.late / a.sent : NaN,
      lagP50: rate ? percentile(a.lagP50, 0.5) : NaN,
      pairMedian,
    }));
  }

  return { agent, admin, startBroker, seed, slice, compare };
}

/** One line: A and B side by side, B/A ratios of the totals and the median of the slice pairs. */
export function printComparison(label, [x, y]) {
  console.log(
    `${label.padEnd(22)} A ${x.cpuUs.toFixed(0).padStart(4)} µs/req ${x.rps.toFixed(0).padStart(5)} req/s p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} | ` +
      `B ${y.cpuUs.toFixed(0).padStart(4)} µs/req ${y.rps.toFixed(0).padStart(5)} req/s p50 ${y.p50.toFixed(2)} p99 ${y.p99.toFixed(2)} | ` +
      `read+write syscalls/req A ${x.ioPerRequest.toFixed(2)} B ${y.ioPerRequest.toFixed(2)} | ` +
      (Number.isFinite(x.redisCpuUs)
        ? `redis-server CPU µs/req A ${x.redisCpuUs.toFixed(0)} B ${y.redisCpuUs.toFixed(0)} | `
        : '') +
      `B/A cpu ${(y.cpuUs / x.cpuUs).toFixed(3)} rps ${(y.rps / x.rps).toFixed(3)} (median of slice pairs: cpu ${y.pairMedian.cpu.toFixed(3)} rps ${y.pairMedian.rps.toFixed(3)})`,
  );
}

/** How far the paced generator fell behind; answers the share of requests issued > 5 ms late. */
export function printPacedNote(fixed) {
  const late = Math.max(...fixed.map((x) => x.lateShare));
  console.log(
    `${''.padEnd(22)} paced: open loop, evenly spaced, latency from the intended start (includes the generator's timer lag, median ${Math.max(...fixed.map((x) => x.lagP50)).toFixed(2)} ms); ` +
      `${(late * 100).toFixed(1)} % issued > 5 ms late${late > 0.05 ? ': GENERATOR BEHIND, these latencies are not to be trusted' : ''}`,
  );
  return late;
}
