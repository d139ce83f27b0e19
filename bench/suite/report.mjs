// What a run of bench/run.mjs reports: the machine it ran on, the results table (printed) and
// bench/results.md.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { f0 } from './format.mjs';
import { DEPLOYED_NODE_OPTIONS, DIST, PROFILE, QUICK, results, ROOT } from './settings.mjs';

function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

export function machine() {
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

export function table(rowsList) {
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

/** bench/results.md: the machine, the table, how each scenario is measured and what its figures mean. */
export function markdown(m, rowsList, seconds, scenarios) {
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
    ...scenarios.filter((s) => s.method).map((s) => s.method()),
  );
  const notes = [...scenarios.flatMap((s) => s.notes?.(results.scenarios) ?? []), ...results.notes];
  if (notes.length) md.push('', '## Reading the figures', '', ...notes.map((n) => `- ${n}`));
  if (results.profile) md.push('', '## CPU profile (--profile)', '', '```', results.profile, '```');
  md.push('');
  return md.join('\n');
}
