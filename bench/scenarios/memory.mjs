// Memory: the VmRSS of the broker, measured alongside the other scenarios (results.memory: idle
// by bench/run.mjs, the rest by the token and scale scenarios); rows only, it runs nothing itself.
import { f0, f2, verdict } from '../suite/format.mjs';
import { DEPLOYED_NODE_OPTIONS, results } from '../suite/settings.mjs';

// The issue's target is 150 MB; read as decimal megabytes, that is 143 MiB.
const RSS_TARGET = '< 150 MB (143 MiB)';
const underRssTarget = (mibValue) => mibValue * 1024 * 1024 < 150e6;
const mib = (value) => `${f0(value)} MiB (${f0((value * 1024 * 1024) / 1e6)} MB)`;

/** Its rows of the results table, the section heading first (bench/run.mjs numbers it). */
function rows() {
  const out = [];
  const m = results.memory;
  out.push(['Memory (VmRSS of the broker)', '', '', '', '', '']);
  out.push(['RSS idle after start', mib(m.idle), '', '', '', '']);
  if (m.idleAfterImport !== undefined)
    out.push([
      'RSS idle, 1,000 connections imported',
      `${f0(m.idleAfterImport)} MiB`,
      m.floorIdle ? `${f0(m.floorIdle)} MiB` : '',
      '',
      '',
      '',
    ]);
  if (m.underLoad !== undefined)
    out.push([
      `RSS peak under load (token API, 1,000 connections)${DEPLOYED_NODE_OPTIONS ? `, ${DEPLOYED_NODE_OPTIONS} as deployed` : ''}`,
      mib(m.underLoad),
      m.floorUnderLoad ? `${f0(m.floorUnderLoad)} MiB` : '',
      m.floorUnderLoad ? f2(m.underLoad / m.floorUnderLoad) : '',
      RSS_TARGET,
      verdict(underRssTarget(m.underLoad)),
    ]);
  if (m.docker) {
    out.push([
      'RSS peak under load, V8 default heap settings (no NODE_OPTIONS)',
      mib(m.docker.max.peakRss),
      m.underLoad !== undefined ? `${f0(m.underLoad)} MiB` : '',
      m.underLoad !== undefined ? f2(m.docker.max.peakRss / m.underLoad) : '',
      '',
      `for comparison (baseline: as deployed); req/s ${f0(m.docker.max.rps)} vs ${f0(results.scenarios.token?.brokerMax.rps)}, CPU ${f0(m.docker.max.cpuUs)} µs vs ${f0(results.scenarios.token?.brokerMax.cpuUs)} µs per request`,
    ]);
  }
  if (m.underLoadScale !== undefined)
    out.push([
      'RSS peak under load (token API, all connections)',
      `${f0(m.underLoadScale)} MiB`,
      '',
      '',
      RSS_TARGET,
      verdict(underRssTarget(m.underLoadScale)),
    ]);
  if (m.listing !== undefined)
    out.push([
      'RSS peak while listing everything',
      `${f0(m.listing)} MiB`,
      '',
      '',
      RSS_TARGET,
      verdict(underRssTarget(m.listing)),
    ]);
  return out;
}

/** Its bullet under "How it is measured" in bench/results.md. */
function method() {
  return "- **Memory**: VmRSS of the broker from /proc/<pid>/status, sampled every 200 ms during each run; the floor's for comparison. Brokers and the floor run with the `NODE_OPTIONS` the Dockerfile sets (`npm start` gets the same through `.npmrc`), as deployed; a third broker process runs with V8's default heap settings for comparison, through the same imports and the same load, alternating with the other two. The target, 150 MB, is read as decimal megabytes (143 MiB).";
}

export const scenario = { name: 'memory', rows, method };
