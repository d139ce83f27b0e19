// The token API, the broker beside its floor (bench/floor.mjs): closed loop at saturation, then
// paced at half and a quarter of the floor's maximum, in alternating slices; the broker with V8's
// default heap settings alongside (memory).
import { rssMiB } from '../lib.mjs';
import { f0, f1, f2, ms, verdict } from '../suite/format.mjs';
import { startBroker, startFloor } from '../suite/processes.mjs';
import {
  ACCESS_BYTES,
  CLIENTS,
  DEPLOYED_NODE_OPTIONS,
  log,
  PROVIDER,
  REFRESH_BYTES,
  results,
  SCOPES,
  T,
} from '../suite/settings.mjs';
import {
  connectionIds,
  importConnections,
  interleaved,
  pacedLog,
  randomToken,
  tokenLoad,
} from '../suite/token-load.mjs';

export const CONNECTIONS = 1000;

export async function scenarioToken(env) {
  const { broker, redis } = env;
  const ids = connectionIds('bench', CONNECTIONS);
  log(`token API: importing ${CONNECTIONS} connections`);
  await importConnections(broker, ids, 86_400);
  env.tokenIds = ids;

  // The floor reads a value as large as a broker record (fields and values) and answers the same shape.
  const sample = await redis.client.hgetall(`ob:{${PROVIDER}:${ids[0]}}:conn`);
  const recordBytes = Object.entries(sample).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );
  const pipeline = redis.client.pipeline();
  for (const id of ids) {
    const value = {
      access_token: randomToken(ACCESS_BYTES),
      token_type: 'Bearer',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      scopes: SCOPES,
      pad: '',
    };
    value.pad = 'x'.repeat(Math.max(0, recordBytes - JSON.stringify(value).length));
    pipeline.set(`floor:{${PROVIDER}:${id}}`, JSON.stringify(value));
  }
  await pipeline.exec();
  const floor = await startFloor(redis.url);
  env.floor = floor;
  // The bar: bare node:http (no framework) doing the same GET and answering the same JSON.
  const nodeFloor = await startFloor(redis.url, 'floor-node-http.mjs');
  results.memory.idleAfterImport = rssMiB(broker.pid);
  results.memory.floorIdle = rssMiB(floor.pid);
  // The same broker with V8's default heap settings (no NODE_OPTIONS), through the same imports:
  // what the deployed options buy.
  const dockerOptions = DEPLOYED_NODE_OPTIONS;
  const docker = dockerOptions
    ? await startBroker('broker-v8-defaults', redis.url, env.fake.url, [], { NODE_OPTIONS: '' })
    : undefined;
  if (docker) await importConnections(docker, ids, 86_400);

  const targets = [
    { base: broker.internalUrl, pid: broker.pid },
    { base: floor.url, pid: floor.pid },
    { base: nodeFloor.url, pid: nodeFloor.pid },
  ];
  if (docker) targets.push({ base: docker.internalUrl, pid: docker.pid });
  log(
    `token API: broker, Express floor and node:http floor, ${CLIENTS} clients, ${T.max / 1000} s each in alternating slices (after a warm-up)`,
  );
  await tokenLoad(floor.url, ids, { durationMs: T.warm });
  await tokenLoad(nodeFloor.url, ids, { durationMs: T.warm });
  await tokenLoad(broker.internalUrl, ids, { durationMs: T.warm });
  if (docker) await tokenLoad(docker.internalUrl, ids, { durationMs: T.warm });
  const [brokerMax, floorMax, nodeMax, dockerMax] = await interleaved(targets, ids, {
    durationMs: T.max,
  });
  await docker?.stop();
  const rate = Math.max(50, Math.round(floorMax.rps * 0.5));
  const rateLow = Math.max(25, Math.round(floorMax.rps * 0.25));
  env.fixedRate = rate;
  log(
    `token API: both paced (open loop, evenly spaced) at ${rate} req/s (half the floor's maximum), ${T.fixed / 1000} s each`,
  );
  const [brokerFixed, floorFixed, nodeFixed] = await interleaved(targets.slice(0, 3), ids, {
    durationMs: T.fixed,
    rate,
    slices: 2,
  });
  pacedLog(`token API paced at ${rate} req/s`, [brokerFixed, floorFixed, nodeFixed]);
  log(
    `token API: both paced at ${rateLow} req/s (a quarter of the floor's maximum), ${T.fixed / 1000} s each`,
  );
  const [brokerLow, floorLow, nodeLow] = await interleaved(targets.slice(0, 3), ids, {
    durationMs: T.fixed,
    rate: rateLow,
    slices: 2,
  });
  pacedLog(`token API paced at ${rateLow} req/s`, [brokerLow, floorLow, nodeLow]);
  results.memory.underLoad = Math.max(brokerMax.peakRss, brokerFixed.peakRss, brokerLow.peakRss);
  results.memory.floorUnderLoad = floorMax.peakRss;
  if (dockerMax) results.memory.docker = { options: dockerOptions, max: dockerMax };
  results.scenarios.token = {
    recordBytes,
    floorMax,
    brokerMax,
    brokerFixed,
    floorFixed,
    rate,
    brokerLow,
    floorLow,
    rateLow,
    nodeMax,
    nodeFixed,
    nodeLow,
  };
  await floor.stop();
  await nodeFloor.stop();
}

/** Without the token scenario, the connections the others read (env.tokenIds) are imported all the same. */
async function skipped(env) {
  env.tokenIds = connectionIds('bench', CONNECTIONS);
  await importConnections(env.broker, env.tokenIds, 86_400);
}

/** The generator's side of a paced row: its timer lag, and a warning when it fell behind. */
const pacedDetail = (...runs) => {
  const late = Math.max(...runs.map((r) => r.lateShare));
  const lag = Math.max(...runs.map((r) => r.lagP50));
  return `${late > 0.05 ? `GENERATOR BEHIND (${f1(late * 100)} % issued > 5 ms late): not to be trusted; ` : ''}includes the generator's timer lag, median ${ms(lag)}`;
};

/** Its rows of the results table, the section heading first (bench/run.mjs numbers it). */
function rows(s) {
  const out = [];
  if (!s.token) return out;
  const { floorMax, brokerMax, brokerFixed, floorFixed, rate, brokerLow, floorLow, rateLow } = s.token;
  out.push(['Token API (1,000 connections, fresh tokens)', '', '', '', '', '']);
  out.push([
    `req/s at ${CLIENTS} clients`,
    f0(brokerMax.rps),
    f0(floorMax.rps),
    f2(brokerMax.rps / floorMax.rps),
    '≥ 0.8× floor',
    verdict(brokerMax.rps / floorMax.rps >= 0.8),
  ]);
  out.push([
    `p50 at ${CLIENTS} clients`,
    ms(brokerMax.p50),
    ms(floorMax.p50),
    f2(brokerMax.p50 / floorMax.p50),
    '',
    '',
  ]);
  out.push([
    `p99 at ${CLIENTS} clients`,
    ms(brokerMax.p99),
    ms(floorMax.p99),
    f2(brokerMax.p99 / floorMax.p99),
    '≤ floor',
    verdict(brokerMax.p99 <= floorMax.p99),
  ]);
  for (const [r, b, f, share] of [
    [rate, brokerFixed, floorFixed, 'half'],
    [rateLow, brokerLow, floorLow, 'a quarter'],
  ]) {
    if (!b) continue;
    out.push([
      `p50 at ${r} req/s paced (${share} of the floor's max)`,
      ms(b.p50),
      ms(f.p50),
      f2(b.p50 / f.p50),
      '',
      pacedDetail(b, f),
    ]);
    out.push([
      `p99 at ${r} req/s paced (${share} of the floor's max)`,
      ms(b.p99),
      ms(f.p99),
      f2(b.p99 / f.p99),
      '≤ floor',
      verdict(b.p99 <= f.p99),
    ]);
  }
  out.push([
    'CPU per request (process user+sys)',
    `${f0(brokerMax.cpuUs)} µs`,
    `${f0(floorMax.cpuUs)} µs`,
    f2(brokerMax.cpuUs / floorMax.cpuUs),
    '',
    `paced at ${rate} req/s: ${f0(brokerFixed.cpuUs)} µs vs ${f0(floorFixed.cpuUs)} µs${brokerLow ? `; at ${rateLow} req/s: ${f0(brokerLow.cpuUs)} µs vs ${f0(floorLow.cpuUs)} µs` : ''}`,
  ]);
  const { nodeMax, nodeFixed, nodeLow } = s.token;
  if (nodeMax) {
    // The bar of issue 21: bare node:http + one GET (bench/floor-node-http.mjs), same run.
    out.push([
      `req/s at ${CLIENTS} clients, vs bare node:http + GET`,
      f0(brokerMax.rps),
      f0(nodeMax.rps),
      f2(brokerMax.rps / nodeMax.rps),
      '≥ 0.75× node:http floor',
      `${verdict(brokerMax.rps / nodeMax.rps >= 0.75)}; CPU per request ${f0(brokerMax.cpuUs)} µs vs ${f0(nodeMax.cpuUs)} µs (${f2(brokerMax.cpuUs / nodeMax.cpuUs)}×)`,
    ]);
    for (const [r, b, f] of [
      [rate, brokerFixed, nodeFixed],
      [rateLow, brokerLow, nodeLow],
    ]) {
      if (!b || !f) continue;
      out.push([
        `p99 at ${r} req/s paced, vs bare node:http + GET`,
        ms(b.p99),
        ms(f.p99),
        `${b.p99 >= f.p99 ? '+' : '−'}${ms(Math.abs(b.p99 - f.p99))}`,
        '≤ node:http floor + 1 ms',
        `${verdict(b.p99 - f.p99 <= 1)}; p50 ${ms(b.p50)} vs ${ms(f.p50)}; CPU per request ${f0(b.cpuUs)} µs vs ${f0(f.cpuUs)} µs`,
      ]);
    }
  }
  return out;
}

/** What its figures mean, where a number alone would mislead (under "Reading the figures"). */
function notes(s) {
  return s.token
    ? [
        "CPU per request is the steadiest figure on a shared machine (it does not depend on what else gets the cores); req/s and latency move with the load average. At saturation in a closed loop, p99 follows throughput (clients ÷ req/s); the paced rows compare latency at the same offered load below saturation, each request's time counted from when it was due, so they include the generator's own timer lag (shown beside them, alike for broker and floor).",
      ]
    : [];
}

/** Its bullet under "How it is measured" in bench/results.md. */
function method() {
  return `- **Token API**: ${CONNECTIONS} connections imported with \`PUT\` (access token ${ACCESS_BYTES} B, refresh token ${REFRESH_BYTES} B, valid 24 h), ${CLIENTS} closed-loop clients (keep-alive), each request for a random connection, ${T.max / 1000} s after a ${T.warm / 1000} s warm-up. The **floor** (bench/floor.mjs, its own process) is a bare Express 5 app doing one ioredis \`GET\` of a JSON value as large as a broker record (${results.scenarios.token?.recordBytes ?? 'n/a'} B) and answering the same JSON shape: no key check, no decryption, no metrics. Beside it, in the same alternating slices, the **bare node:http floor** (bench/floor-node-http.mjs, its own process): node:http with no framework, the same ioredis \`GET\` and the same JSON answer, the least any Node service doing this job costs here; its rows give the broker's throughput as a share of it (target 0.75 at 50 clients), the paced p99s' difference (target within 1 ms) and both CPU figures per request. In a closed loop at saturation, latency is clients ÷ throughput, so p99 there mostly mirrors throughput; the fixed-rate runs compare latency below saturation, at half and at a quarter of the floor's maximum (${T.fixed / 1000} s each, in alternating slices). They are paced open loop: requests evenly spaced in time (request i due at i ÷ rate), a 1 ms timer issuing every request that has come due on a pool of 64 keep-alive sockets opened beforehand, whatever the server's answers; each request's latency runs from its intended start to the end of its response, so a stalled server shows in the figures instead of slowing the load (no coordinated omission). That includes the generator's timer lag (Node's timers have 1 ms granularity: about 0.6 ms at the median, shown beside the rows); if the generator itself falls behind (over 5 % of requests issued more than 5 ms late), the rows say so. autocannon's \`overallRate\` is not used for them: it caps each connection per second (a counter reset every second), so each of the ${CLIENTS} connections fires its second's quota back-to-back at the start of every second, a saturated burst each second rather than a rate below saturation. Percentiles are computed from every 2xx response's own time (sub-millisecond).`;
}

export const scenario = { name: 'token', run: scenarioToken, skipped, rows, notes, method };
