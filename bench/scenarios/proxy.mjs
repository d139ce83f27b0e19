// The proxy beside its floor (a GET straight to the fake API): bench/proxy.mjs runs it; its
// figures become rows of the table, each beside the direct GET measured in the same run.
import { f0, f2, ms, verdict } from '../suite/format.mjs';
import { log, QUICK, results } from '../suite/settings.mjs';

/** The target of bench/proxy.mjs: 150 MB, read as decimal megabytes. */
const RSS_LIMIT_MIB = 150e6 / 2 ** 20;

async function run() {
  const { runProxyBench } = await import('../proxy.mjs');
  results.scenarios.proxy = await runProxyBench({ quick: QUICK, log });
}

function rows(s) {
  const p = s.proxy;
  if (!p) return [];
  const { fixed, saturation, rss } = p;
  return [
    [
      `Proxy (proxied GET vs the same GET straight to the fake API, ${p.rate} req/s paced)`,
      '',
      '',
      '',
      '',
      '',
    ],
    [
      'p50 at the fixed rate',
      ms(fixed.proxy.p50),
      ms(fixed.direct.p50),
      `+${ms(fixed.overheadP50)}`,
      '≤ direct + 1 ms',
      verdict(fixed.overheadP50 <= 1),
    ],
    [
      'p99 at the fixed rate',
      ms(fixed.proxy.p99),
      ms(fixed.direct.p99),
      `+${ms(fixed.overheadP99)}`,
      '≤ direct + 3 ms',
      `${verdict(fixed.overheadP99 <= 3)}; token API beside it: p50 ${ms(fixed.token.p50)}, p99 ${ms(fixed.token.p99)}`,
    ],
    [
      'broker CPU per request',
      `${f0(fixed.brokerCpuUsPerRequest.proxy)} µs`,
      '',
      '',
      '',
      `token API ${f0(fixed.brokerCpuUsPerRequest.token)} µs`,
    ],
    [
      'req/s at 50 clients (saturation)',
      f0(saturation.proxy.rps),
      f0(saturation.direct.rps),
      f2(saturation.proxy.rps / saturation.direct.rps),
      '',
      `p99 ${ms(saturation.proxy.p99)} vs ${ms(saturation.direct.p99)}`,
    ],
    [
      'RSS peak while 100 MB streams each way',
      `${f0(rss.peakWhileStreaming)} MiB`,
      '',
      '',
      '< 150 MB (143 MiB)',
      `${verdict(rss.peakWhileStreaming < RSS_LIMIT_MIB)}; idle ${f0(rss.idle)} MiB; ${f2(rss.streamSeconds)} s`,
    ],
  ];
}

function method() {
  return "- **Proxy**: bench/proxy.mjs (its own header says how): a proxied GET through the broker and the same GET straight to the fake API, in alternating slices at a fixed rate below saturation (a quarter of the proxy's saturation rate), then at saturation; the token API beside them for reference; RSS sampled while a 100 MB upload and a 100 MB download stream at once.";
}

export const scenario = { name: 'proxy', run, rows, method };
