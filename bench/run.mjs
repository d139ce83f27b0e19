// `npm run bench`: the broker measured beside its floor, on loopback, against a private
// redis-server this script starts (never the machine's Redis on 6379). Prints a table and writes
// bench/results.md. Absolute figures drift on a shared machine; the ratios are the point.
//
// Options: --only=token,stampede,connect,scale,proxy (scenarios to run, bench/scenarios/index.mjs;
//          memory is measured alongside)
//          --quick (short runs, for trying the script out)
//          --profile (the first broker runs under --cpu-prof; the profile is summarised at the end)
//          --no-write (do not write bench/results.md)
//          --dist=<dir> (run another build of the broker, e.g. an older commit's, for before/after)
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { installCleanup, rssMiB, sleep, startRedis } from './lib.mjs';
import { SCENARIOS } from './scenarios/index.mjs';
import { f0 } from './suite/format.mjs';
import { startBroker, startFakeProvider } from './suite/processes.mjs';
import { machine, markdown, table } from './suite/report.mjs';
import { agent, argv, DIST, flag, HERE, log, PROFILE, QUICK, results } from './suite/settings.mjs';

const onlyArg = argv.find((a) => a.startsWith('--only='));
const ONLY = onlyArg
  ? new Set(onlyArg.slice(7).split(','))
  : new Set(SCENARIOS.filter((s) => s.run).map((s) => s.name));

installCleanup(QUICK ? 150_000 : 300_000);
if (!existsSync(join(DIST, 'main.js')))
  throw new Error('dist/main.js is missing: run `npm run build` first (npm run bench does)');

/** The results table: each scenario's section in turn, its heading numbered. */
function rows() {
  const out = [];
  let section = 0;
  for (const scenario of SCENARIOS) {
    if (!scenario.rows) continue;
    section += 1;
    const [heading, ...rest] = scenario.rows(results.scenarios);
    if (heading) out.push([`${section}. ${heading[0]}`, ...heading.slice(1)], ...rest);
  }
  return out;
}

async function main() {
  const started = performance.now();
  const m = machine();
  log(`${m.model}, nproc ${m.nproc}, node ${m.node}, redis ${m.redis}; load average ${m.loadBefore}`);
  const redis = await startRedis();
  const fake = await startFakeProvider();
  const profileDir = PROFILE ? join(HERE, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const broker = await startBroker(
    'broker',
    redis.url,
    fake.url,
    profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  );
  await sleep(500);
  results.memory = { idle: rssMiB(broker.pid) };
  const env = { redis, fake, broker, fixedRate: 1000 };

  for (const scenario of SCENARIOS) {
    if (!scenario.run) continue;
    if (ONLY.has(scenario.name)) await scenario.run(env);
    else await scenario.skipped?.(env);
  }

  if (!broker.alive()) throw new Error(`the broker died during the run:\n${broker.output()}`);
  const brokerWarnings = broker.output().trim();
  if (brokerWarnings)
    results.notes.push(
      `The broker wrote (LOG_LEVEL=warn): ${brokerWarnings.split('\n').slice(-3).join(' / ').slice(0, 600)}`,
    );
  if (profileDir) {
    const since = Date.now();
    await broker.stop(10_000);
    const newest = readdirSync(profileDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(profileDir, f))
      .filter((f) => statSync(f).mtimeMs >= since - 60_000)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (newest) {
      const { summarise } = await import('./profile-summary.mjs');
      results.profile = `${newest}\n${summarise(newest, 25)}`;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const rowsList = rows();
  console.log(`\n${table(rowsList)}\n`);
  console.log(`machine: ${m.model}, nproc ${m.nproc}, node ${m.node}; ${f0(seconds)} s`);
  if (results.profile) console.log(`\nCPU profile, top self time:\n${results.profile}`);
  if (!flag('no-write')) {
    // Sections other scripts keep in the file (bench/audit.mjs) survive the rewrite.
    const previous = existsSync(join(HERE, 'results.md'))
      ? readFileSync(join(HERE, 'results.md'), 'utf8')
      : '';
    const kept = previous.match(/<!-- audit\.mjs -->[\s\S]*<!-- \/audit\.mjs -->/)?.[0];
    writeFileSync(
      join(HERE, 'results.md'),
      `${markdown(m, rowsList, seconds, SCENARIOS).trimEnd()}${kept ? `\n\n${kept}` : ''}\n`,
    );
    console.log('written: bench/results.md');
  }
  redis.client.disconnect();
  agent.destroy();
  process.exit(0);
}

await main();
