// Before/after on the token API: two builds of the broker side by side on one private Redis,
// loaded in alternating short slices so both see the same machine. Reports CPU per request
// (process user+sys time ÷ requests: the steadiest figure on a shared machine), req/s and latency.
// Two comparisons: paced at --rate req/s (open loop, evenly spaced requests, latency from each
// request's intended start: `paced` in lib.mjs; autocannon's overallRate is not used, as it sends
// each connection's per-second quota in a burst at the start of every second), then the maximum
// with 50 closed-loop clients (autocannon).
//
//   node bench/ab.mjs --a=/path/to/old/dist [--b=dist] [--slices=10] [--rate=600] [--seconds=1]
//
// Make an "old" build without touching the working tree, e.g.:
//   mkdir /tmp/ob-base && git archive HEAD src tsconfig.json tsconfig.build.json package.json | tar -x -C /tmp/ob-base
//   ln -s "$PWD/node_modules" /tmp/ob-base/node_modules && (cd /tmp/ob-base && npx tsc -p tsconfig.build.json)
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startRedis } from './lib.mjs';
import { CLIENTS, createTokenAb, printComparison, printPacedNote } from './token-ab.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const opt = (name, fallback) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const DIST_A = opt('a');
const DIST_B = resolve(ROOT, opt('b', 'dist'));
const SLICES = Number(opt('slices', 10));
const RATE = Number(opt('rate', 600));
const SLICE_MS = Number(opt('seconds', 1)) * 1000;
if (!DIST_A || !existsSync(join(DIST_A, 'main.js')) || !existsSync(join(DIST_B, 'main.js'))) {
  console.error('usage: node bench/ab.mjs --a=<old dist dir> [--b=dist]  (each must hold main.js)');
  process.exit(2);
}
installCleanup(300_000);

const redis = await startRedis();
const ab = createTokenAb({ slices: SLICES, sliceMs: SLICE_MS, redisPid: redis.proc.pid });
const a = await ab.startBroker('A', resolve(DIST_A), redis.url);
const b = await ab.startBroker('B', DIST_B, redis.url);
const ids = Array.from({ length: 1000 }, (_, i) => `ab-${i}`);
// One Redis, one prefix: what A imports, B reads.
await ab.seed([a], ids);
// Warm both (JIT, first reads mark refresh-ahead candidates).
for (const t of [a, b]) await ab.slice(t, ids, undefined);

console.log(
  `A = ${resolve(DIST_A)}\nB = ${DIST_B}\n${SLICES} alternating slices of ${SLICE_MS / 1000} s each`,
);
const fixed = await ab.compare([a, b], ids, RATE);
printComparison(`paced ${RATE} req/s`, fixed);
printPacedNote(fixed);
printComparison(`max, ${CLIENTS} clients`, await ab.compare([a, b], ids, undefined));
redis.client.disconnect();
ab.agent.destroy();
process.exit(0);
