// Where a token API request's CPU goes: brokers under `--cpu-prof` (one per build given, on one
// private Redis, seeded with 1,000 connections), loaded in turn in alternating slices by 50
// closed-loop clients or paced at --rate (after a warm-up), then stopped; each one's profile is
// split into the phases of a request (bench/profile-summary.mjs, `phases`), in µs per request.
// Several builds side by side (--dist=a,b) see the same machine, so their breakdowns compare.
//
//   node bench/profile-token.mjs [--dist=dist[,other/dist]] [--seconds=8] [--slices=4] [--rate=<req/s>]
//                                [--out=bench/profiles]
//
// The profile's time is the main thread's wall time while busy: on a loaded machine a system call
// that wakes another process (a socket write to Redis) is where the scheduler most often preempts,
// so writes weigh more there than in the process's CPU time (shown beside it).
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startRedis } from './lib.mjs';
import { phases, summarise } from './profile-summary.mjs';
import { createTokenAb } from './token-ab.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const opt = (name, fallback) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const DISTS = opt('dist', 'dist')
  .split(',')
  .map((d) => resolve(ROOT, d));
const SECONDS = Number(opt('seconds', 8));
const SLICES = Number(opt('slices', 4));
// Paced at this many req/s (open loop) instead of 50 closed-loop clients.
const RATE = opt('rate') ? Number(opt('rate')) : undefined;
const OUT = resolve(ROOT, opt('out', 'bench/profiles'));
installCleanup(300_000);

const redis = await startRedis();
const ab = createTokenAb({ slices: 1, sliceMs: (SECONDS * 1000) / SLICES });
const brokers = [];
for (const [i, dist] of DISTS.entries()) {
  const dir = join(OUT, `run-${process.pid}-${i}`);
  mkdirSync(dir, { recursive: true });
  brokers.push({
    dist,
    dir,
    ...(await ab.startBroker(`broker-${i}`, dist, redis.url, {}, ['--cpu-prof', '--cpu-prof-dir', dir])),
  });
}
const ids = Array.from({ length: 1000 }, (_, i) => `prof-${i}`);
// One Redis, one prefix: what the first imports, all read.
await ab.seed([brokers[0]], ids);
for (const b of brokers) await ab.slice(b, ids, RATE); // warm-up (JIT)
for (const b of brokers) Object.assign(b, { requests: 0, cpu: 0, seconds: 0, from: Infinity, to: 0 });
for (let s = 0; s < SLICES; s++) {
  const order = s % 2 === 0 ? brokers : [...brokers].reverse();
  for (const b of order) {
    const from = Date.now();
    const r = await ab.slice(b, ids, RATE);
    b.from = Math.min(b.from, from);
    b.to = Date.now();
    b.requests += r.samples.length;
    b.cpu += r.cpu;
    b.seconds += r.seconds;
  }
}
for (const b of brokers) {
  await b.stop(10_000);
  const exitMs = Date.now();
  const file = readdirSync(b.dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(b.dir, f))
    .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
  console.log(`\n== ${b.dist}`);
  console.log(
    `${b.requests} requests in ${b.seconds.toFixed(1)} s (${(b.requests / b.seconds).toFixed(0)} req/s), process CPU ${((b.cpu / b.requests) * 1e6).toFixed(0)} µs/request`,
  );
  console.log(file);
  console.log(phases(file, b.requests, { fromMs: b.from, toMs: b.to, exitMs }));
  if (DISTS.length === 1) console.log(`\n${summarise(file, 30)}`);
}
redis.client.disconnect();
ab.agent.destroy();
process.exit(0);
