// Where a token API request's CPU goes: one broker under `--cpu-prof`, seeded with 1,000 connections,
// loaded by 50 closed-loop clients or paced at --rate (after a warm-up), then stopped; its profile is split into the
// phases of a request (bench/profile-summary.mjs, `phases`) and shown in µs per request.
//
//   node bench/profile-token.mjs [--dist=dist] [--seconds=10] [--rate=<req/s>] [--out=bench/profiles]
//
// The profile covers only the warm-up and the load (the seeding is in it too, a small share: it is
// left out by starting the count after it, see `phases`' note on the samples it keeps).
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
const DIST = resolve(ROOT, opt('dist', 'dist'));
const SECONDS = Number(opt('seconds', 10));
// Paced at this many req/s (open loop) instead of 50 closed-loop clients.
const RATE = opt('rate') ? Number(opt('rate')) : undefined;
const OUT = resolve(ROOT, opt('out', 'bench/profiles'));
installCleanup(300_000);
mkdirSync(OUT, { recursive: true });

const ab = createTokenAb({ slices: 1, sliceMs: SECONDS * 1000 });
const redis = await startRedis();
const broker = await ab.startBroker('broker', DIST, redis.url, {}, ['--cpu-prof', '--cpu-prof-dir', OUT]);
const ids = Array.from({ length: 1000 }, (_, i) => `prof-${i}`);
await ab.seed([broker], ids);
await ab.slice(broker, ids, RATE); // warm-up (JIT), as long as the measured slice
const loadStart = Date.now();
const run = await ab.slice(broker, ids, RATE);
const loadEnd = Date.now();
const since = Date.now();
await broker.stop(10_000);
const exitMs = Date.now();
const file = readdirSync(OUT)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => join(OUT, f))
  .filter((f) => statSync(f).mtimeMs >= since - 1000)
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
const requests = run.samples.length;
console.log(
  `${requests} requests in ${run.seconds} s (${(requests / run.seconds).toFixed(0)} req/s), process CPU ${((run.cpu / requests) * 1e6).toFixed(0)} µs/request`,
);
console.log(file);
console.log(phases(file, requests, { fromMs: loadStart, toMs: loadEnd, exitMs }));
console.log('');
console.log(summarise(file, 30));
redis.client.disconnect();
ab.agent.destroy();
process.exit(0);
