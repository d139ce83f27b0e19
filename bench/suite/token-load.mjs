// The token API under load for the scenarios of bench/run.mjs (closed loop, or paced at a rate, on
// several targets in alternating slices), and the connections it reads.
import { randomBytes } from 'node:crypto';
import { closedLoop, cpuSeconds, drive, paced, percentile, request, rssSampler } from '../lib.mjs';
import {
  ACCESS_BYTES,
  agent,
  AUTH,
  CLIENTS,
  log,
  PROVIDER,
  REFRESH_BYTES,
  results,
  SCOPES,
} from './settings.mjs';

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
export async function tokenLoad(base, ids, { durationMs, rate, pid }) {
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
  const { samples, statuses, seconds, errors, timeouts } = await closedLoop({
    url: base,
    connections: CLIENTS,
    durationMs,
    headers: AUTH,
    pathFor: tokenPath,
  });
  const cpu = pid ? cpuSeconds(pid) - cpuBefore : NaN;
  const peakRss = sampler?.stop();
  const bad = Object.entries(statuses).filter(([s]) => !s.startsWith('2'));
  if (bad.length > 0 || errors > 0) {
    throw new Error(
      `token load on ${base} had failures: statuses ${JSON.stringify(statuses)}, errors ${errors}, timeouts ${timeouts}`,
    );
  }
  return { samples, seconds, cpu, peakRss };
}

/**
 * Runs the same load on each target in turn, in `slices` alternating slices, so a change in what
 * else the machine does weighs on all targets alike. `rate`: paced open loop at that many req/s
 * (see tokenLoad); without it, closed loop. Answers per target: req/s, percentiles, CPU per request
 * (µs) and peak RSS; paced, also the share of requests the generator issued > 5 ms late
 * (`lateShare`, `behind` when over 5 %: then the latencies are not to be trusted), its median
 * timer lag and how many requests waited for a free socket.
 */
export async function interleaved(targets, ids, { durationMs, rate, slices = 5 }) {
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
export function pacedLog(label, runs) {
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

export function randomToken(bytes) {
  // base64url of n bytes: 4/3 n characters.
  return randomBytes((bytes * 3) / 4).toString('base64url');
}

export function connectionIds(prefix, n) {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
}

export async function importConnections(broker, ids, expiresIn) {
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
