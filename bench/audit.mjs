// The token API with the audit log on beside itself with the audit log off, in the same run: two
// brokers of one build on one private Redis (prefixes `off:` and `on:`), loaded in alternating
// short slices so both see the same machine. Both read tokens with the same scoped service key
// (SERVICE_KEYS_FILE), so the one difference is AUDIT: every 200 of B writes its entry (XADD to a
// shard stream) before the token leaves. Reports CPU per request, req/s and latency: paced at
// --rate req/s (open loop, latency from each request's intended start), then the maximum with 50
// closed-loop clients. Targets (docs/least-privilege.md): B at least 0.85 of A's throughput, and
// at most +1 ms p99 at the fixed rate.
//
//   npm run build && node bench/audit.mjs [--slices=6] [--rate=600] [--seconds=1] [--write]
//
// --write puts the figures in bench/results.md, in the section between the audit.mjs markers
// (bench/run.mjs keeps that section when it rewrites the file).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startRedis, tempDir } from './lib.mjs';
import { CLIENTS, createTokenAb, printComparison, printPacedNote } from './token-ab.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const opt = (name, fallback) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const DIST = resolve(ROOT, opt('dist', 'dist'));
const SLICES = Number(opt('slices', 10));
const RATE = Number(opt('rate', 600));
const SLICE_MS = Number(opt('seconds', 1)) * 1000;
if (!existsSync(join(DIST, 'main.js'))) {
  console.error('usage: npm run build && node bench/audit.mjs [--slices=6] [--rate=600] [--seconds=1]');
  process.exit(2);
}
installCleanup(300_000);

const SERVICE_KEY = randomBytes(32).toString('base64url');
const SERVICE_KEYS_FILE = join(tempDir('ob-audit-keys-'), 'service-keys.json');
writeFileSync(
  SERVICE_KEYS_FILE,
  JSON.stringify({
    services: [
      {
        name: 'bench',
        key_sha256: [createHash('sha256').update(SERVICE_KEY).digest('hex')],
        providers: ['bexio'],
        actions: ['token'],
      },
    ],
  }),
);
const ab = createTokenAb({
  slices: SLICES,
  sliceMs: SLICE_MS,
  auth: { authorization: `Bearer ${SERVICE_KEY}` },
});

const redis = await startRedis();
const a = await ab.startBroker('A', DIST, redis.url, {
  SERVICE_KEYS_FILE,
  AUDIT: 'off',
  REDIS_KEY_PREFIX: 'off:',
});
const b = await ab.startBroker('B', DIST, redis.url, {
  SERVICE_KEYS_FILE,
  AUDIT: 'on',
  REDIS_KEY_PREFIX: 'on:',
});
const ids = Array.from({ length: 1000 }, (_, i) => `au-${i}`);
// Two prefixes: each broker gets the same connections.
await ab.seed([a, b], ids);
// Warm both (JIT, first reads mark refresh-ahead candidates).
for (const t of [a, b]) await ab.slice(t, ids, undefined);

const load0 = loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');
const started = Date.now();
console.log(
  `A = AUDIT=off, B = AUDIT=on (${DIST}), both with a scoped service key\n${SLICES} alternating slices of ${SLICE_MS / 1000} s each`,
);
const fixed = await ab.compare([a, b], ids, RATE);
printComparison(`paced ${RATE} req/s`, fixed);
const late = printPacedNote(fixed);
const max = await ab.compare([a, b], ids, undefined);
printComparison(`max, ${CLIENTS} clients`, max);
let entries = 0;
for (let shard = 0; shard < 16; shard++) entries += await redis.client.xlen(`on:{audit:${shard}}`);
console.log(
  `audit entries written by B: ${entries}; by A: ${(await redis.client.keys('off:{audit:*')).length} streams`,
);
if (process.argv.includes('--write')) {
  const ms = (x) => `${x.toFixed(2)} ms`;
  const verdict = (ok) => (ok ? 'PASS' : 'MISS');
  const [fa, fb] = fixed;
  const [ma, mb] = max;
  const section = [
    '<!-- audit.mjs -->',
    '## Audit log on vs off (bench/audit.mjs)',
    '',
    `The token API of one build, \`AUDIT=on\` (B) beside \`AUDIT=off\` (A), both reading with a scoped service key, ${SLICES} alternating slices of ${SLICE_MS / 1000} s on one private Redis. ` +
      `${new Date().toISOString()}, load average before ${load0}, after ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s. ` +
      `Audit entries written by B: ${entries}.`,
    '',
    '| measure | AUDIT=on | AUDIT=off | ratio / delta | target | verdict |',
    '|---|---|---|---|---|---|',
    `| req/s at ${CLIENTS} clients | ${mb.rps.toFixed(0)} | ${ma.rps.toFixed(0)} | ${(mb.rps / ma.rps).toFixed(3)} | ≥ 0.85 | ${verdict(mb.rps / ma.rps >= 0.85)} |`,
    `| … median of the ${SLICES} slice pairs' req/s ratios | | | ${mb.pairMedian.rps.toFixed(3)} | ≥ 0.85 | ${verdict(mb.pairMedian.rps >= 0.85)} |`,
    `| CPU per request at ${CLIENTS} clients | ${mb.cpuUs.toFixed(0)} µs | ${ma.cpuUs.toFixed(0)} µs | ${(mb.cpuUs / ma.cpuUs).toFixed(3)} (pairs' median ${mb.pairMedian.cpu.toFixed(3)}) |  |  |`,
    `| p99 paced at ${RATE} req/s | ${ms(fb.p99)} | ${ms(fa.p99)} | ${fb.p99 - fa.p99 >= 0 ? '+' : ''}${ms(fb.p99 - fa.p99)} | ≤ +1 ms | ${verdict(fb.p99 - fa.p99 <= 1)}${late > 0.05 ? ' (generator behind: not to be trusted)' : ''} |`,
    `| p50 paced at ${RATE} req/s | ${ms(fb.p50)} | ${ms(fa.p50)} | ${fb.p50 - fa.p50 >= 0 ? '+' : ''}${ms(fb.p50 - fa.p50)} |  |  |`,
    `| CPU per request paced | ${fb.cpuUs.toFixed(0)} µs | ${fa.cpuUs.toFixed(0)} µs | ${(fb.cpuUs / fa.cpuUs).toFixed(3)} |  |  |`,
    '<!-- /audit.mjs -->',
  ].join('\n');
  const file = join(ROOT, 'bench', 'results.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const marked = /<!-- audit\.mjs -->[\s\S]*<!-- \/audit\.mjs -->/;
  writeFileSync(
    file,
    marked.test(text) ? text.replace(marked, section) : `${text.trimEnd()}\n\n${section}\n`,
  );
  console.log('written: bench/results.md (audit section)');
}
redis.client.disconnect();
ab.agent.destroy();
process.exit(0);
