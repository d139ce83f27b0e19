// The refresh stampede: callers at one moment on two broker processes for one stale connection,
// beside the same burst for a fresh token and against two bare floor processes.
import { commandCalls, cpuSeconds, diffCalls, percentile, prepareBurst, request } from '../lib.mjs';
import { f1, f2, ms, verdict } from '../suite/format.mjs';
import { startBroker, startFloor } from '../suite/processes.mjs';
import { ACCESS_BYTES, agent, AUTH, log, PROVIDER, results, SCOPES } from '../suite/settings.mjs';
import { importConnections, randomToken } from '../suite/token-load.mjs';

const STAMPEDE_CALLERS = 500;
const STAMPEDE_ROUNDS = 3;
const PROVIDER_DELAY_MS = 300;

/**
 * A floor burst measured as the stampede is: STAMPEDE_ROUNDS bursts, the worst p99 kept (a single
 * burst against the worst of several rounds would favour the floor on a noisy machine).
 */
async function worstBurst(fire, what) {
  let worst;
  for (let round = 0; round < STAMPEDE_ROUNDS; round++) {
    const burst = await fire();
    if (burst.failed > 0) throw new Error(`${what} had failures`);
    const p99 = percentile(
      burst.answers.map((a) => a.ms),
      0.99,
    );
    if (!worst || p99 > worst.p99) worst = { p99, writeMs: burst.writeMs };
  }
  return worst;
}

/**
 * What absorbing the stampede's burst costs any Node service on these cores: the same number of
 * callers at one moment, half on each of two floor processes (bare Express 5 + one ioredis GET,
 * bench/floor.mjs), nothing to wait for. The broker's own fresh-token burst is the stampede's floor;
 * this one says how much of that is the machine.
 */
async function bareBurst(redis) {
  const id = 'stampede-bare';
  await redis.client.set(
    `floor:{${PROVIDER}:${id}}`,
    JSON.stringify({
      access_token: randomToken(ACCESS_BYTES),
      token_type: 'Bearer',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      scopes: SCOPES,
    }),
  );
  const floors = [await startFloor(redis.url), await startFloor(redis.url)];
  const callers = await prepareBurst({
    targets: floors.map((f) => f.url),
    count: STAMPEDE_CALLERS,
    headers: AUTH,
  });
  try {
    const path = () => `/internal/connections/${PROVIDER}/${id}/token`;
    await callers.fire(path); // unmeasured: the floors' first burst
    return await worstBurst(() => callers.fire(path), 'the bare floor burst');
  } finally {
    callers.close();
    await Promise.all(floors.map((f) => f.stop()));
  }
}

export async function scenarioStampede(env) {
  const { broker, fake, redis } = env;
  const broker2 = await startBroker('broker-2', redis.url, fake.url);
  const brokers = [broker, broker2];
  await fake.delay(PROVIDER_DELAY_MS);
  // One raw keep-alive socket per caller, half on each process, opened now and kept for every
  // burst: each burst writes all requests back to back at one moment and times the answers from it.
  const callers = await prepareBurst({
    targets: brokers.map((b) => b.internalUrl),
    count: STAMPEDE_CALLERS,
    headers: AUTH,
  });
  const tokenPath = (id) => () => `/internal/connections/${PROVIDER}/${id}/token`;
  /** A stale connection's stampede: who answered what, and what the provider saw. */
  const stampede = async (id) => {
    // Valid for 60 s, inside REFRESH_MARGIN (300 s): stale, so every caller needs a refresh.
    await importConnections(broker, [id], 60);
    const before = await fake.stats();
    const callsBefore = await commandCalls(redis.client);
    const cpuBefore = brokers.map((b) => cpuSeconds(b.pid));
    const { answers, writeMs, startedAt } = await callers.fire(tokenPath(id));
    // CPU and Redis commands hold under a noisy machine where the latencies do not.
    const cpuMs = brokers.map((b, k) => (cpuSeconds(b.pid) - cpuBefore[k]) * 1000);
    const redisCalls = diffCalls(callsBefore, await commandCalls(redis.client));
    delete redisCalls.info;
    const after = await fake.stats();
    const providerCalls = after.refresh_calls - before.refresh_calls;
    const latencies = answers.filter((a) => a.status === 200).map((a) => a.ms);
    const failed = answers.filter((a) => a.status !== 200);
    return {
      providerCalls,
      // What the provider's token requests of this round took there (the nominal delay plus its
      // timer's lateness); the longest if there were several.
      providerMs: providerCalls > 0 ? Math.max(...after.token_ms.slice(-providerCalls)) : NaN,
      // When the (last) token request reached the provider, from the moment the callers asked.
      providerAsked: providerCalls > 0 ? after.last_token_at - startedAt : NaN,
      distinctTokens: new Set(
        answers.filter((a) => a.status === 200).map((a) => JSON.parse(a.body).access_token),
      ).size,
      failed: failed.length,
      failedStatuses: [...new Set(failed.map((a) => a.status))],
      first: Math.min(...latencies),
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      p99ByProcess: [0, 1].map((k) =>
        percentile(
          answers.filter((a) => a.target === k && a.status === 200).map((a) => a.ms),
          0.99,
        ),
      ),
      max: Math.max(...latencies),
      writeMs,
      cpuMs,
      redisCalls,
    };
  };
  const describe = (r) =>
    `${r.providerCalls} provider call(s) (asked at +${f1(r.providerAsked)} ms, ${f1(r.providerMs)} ms there), ${r.distinctTokens} distinct token(s), ${r.failed} failed${r.failed ? ` (status ${r.failedStatuses.join(', ')})` : ''}; first answer ${f1(r.first)} ms, p99 ${f1(r.p99)} ms (per process ${r.p99ByProcess.map(f1).join(' / ')}); write loop ${f1(r.writeMs)} ms; broker CPU ${r.cpuMs.map(f1).join(' / ')} ms; Redis ${Object.entries(
      r.redisCalls,
    )
      .sort()
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`;
  try {
    await importConnections(broker, ['stampede-fresh'], 86_400);
    // An unmeasured burst first (the token path's first calls in this run, when it has not had the
    // token scenario), then the floor: the same burst for a fresh token, which needs no refresh.
    await callers.fire(tokenPath('stampede-fresh'));
    const fresh = await worstBurst(() => callers.fire(tokenPath('stampede-fresh')), 'the fresh-token burst');
    const freshP99 = fresh.p99;
    log(
      `stampede floor: ${STAMPEDE_CALLERS} callers for a fresh token, p99 ${f1(freshP99)} ms; write loop ${f1(fresh.writeMs)} ms`,
    );
    const bare = await bareBurst(redis);
    log(
      `stampede, bare floor: ${STAMPEDE_CALLERS} callers on two bare Express + GET processes, p99 ${f1(bare.p99)} ms; write loop ${f1(bare.writeMs)} ms`,
    );
    // An unmeasured stampede first: each process's first refresh (cold JIT, the HTTP client's first
    // call, ...) is not what a stampede costs.
    // Each process's own first refresh too: a stampede's lock goes to either process, and the
    // warm-up stampede warms the winner's refresh path only.
    await importConnections(broker, ['stampede-warm-each'], 86_400);
    for (const b of brokers) {
      const res = await request(
        agent,
        `${b.internalUrl}/internal/connections/${PROVIDER}/stampede-warm-each/token?force_refresh=true`,
        { headers: AUTH },
      );
      if (res.status !== 200) throw new Error(`warm-up refresh on ${b.name} answered ${res.status}`);
    }
    log(`stampede warm-up (not measured): ${describe(await stampede('stampede-warm'))}`);
    const rounds = [];
    for (let round = 1; round <= STAMPEDE_ROUNDS; round++) {
      rounds.push(await stampede(`stampede-${round}`));
      log(`stampede round ${round}: ${describe(rounds.at(-1))}`);
    }
    results.scenarios.stampede = { rounds, freshP99, freshWriteMs: fresh.writeMs, bare };
  } finally {
    await fake.delay(0);
    callers.close();
    await broker2.stop();
  }
}

/** Its rows of the results table, the section heading first (bench/run.mjs numbers it). */
function rows(s) {
  const out = [];
  if (!s.stampede) return out;
  const r = s.stampede.rounds;
  const calls = Math.max(...r.map((x) => x.providerCalls));
  const distinct = Math.max(...r.map((x) => x.distinctTokens));
  const p99 = Math.max(...r.map((x) => x.p99));
  const failed = r.reduce((n, x) => n + x.failed, 0);
  out.push([
    `Refresh stampede (${STAMPEDE_CALLERS} callers, 2 processes, provider ${PROVIDER_DELAY_MS} ms; worst of ${r.length})`,
    '',
    '',
    '',
    '',
    '',
  ]);
  out.push(['provider token calls per stampede', String(calls), '1', '', '= 1', verdict(calls === 1)]);
  out.push([
    'distinct tokens handed out',
    String(distinct),
    '1',
    '',
    '= 1',
    verdict(distinct === 1 && failed === 0),
  ]);
  out.push(['failed callers', String(failed), '0', '', '= 0', verdict(failed === 0)]);
  const worst = r.find((x) => x.p99 === p99);
  out.push([
    'callers p99 − provider latency',
    ms(p99 - PROVIDER_DELAY_MS),
    ms(s.stampede.freshP99),
    f2((p99 - PROVIDER_DELAY_MS) / s.stampede.freshP99),
    '≤ 50 ms',
    `${verdict(p99 - PROVIDER_DELAY_MS <= 50)}; floor: the same burst for a fresh token (p99, worst of ${STAMPEDE_ROUNDS}); worst round per process ${worst.p99ByProcess.map(ms).join(' / ')}, first answer ${ms(worst.first)}; provider observed ${ms(worst.providerMs)} (nominal ${PROVIDER_DELAY_MS} ms); write loop ${ms(worst.writeMs)} (floor ${ms(s.stampede.freshWriteMs)})`,
  ]);
  out.push([
    '… against absorbing the same burst, bare floor',
    ms(p99 - PROVIDER_DELAY_MS),
    ms(s.stampede.bare.p99),
    f2((p99 - PROVIDER_DELAY_MS) / s.stampede.bare.p99),
    '≤ floor',
    `${verdict(p99 - PROVIDER_DELAY_MS <= s.stampede.bare.p99)}; floor: the same ${STAMPEDE_CALLERS} callers at once on two bare Express 5 + ioredis GET processes, nothing to wait for (p99, worst of ${STAMPEDE_ROUNDS})`,
  ]);
  return out;
}

/** What its figures mean, where a number alone would mislead (under "Reading the figures"). */
function notes(s) {
  return s.stampede
    ? [
        "In the stampede, every caller is answered after the one refresh: the time beyond the provider's own latency is mostly the time two processes take to get through that many requests on these cores, which the fresh-token burst (its floor) shows on its own.",
      ]
    : [];
}

/** Its bullet under "How it is measured" in bench/results.md. */
function method() {
  return `- **Refresh stampede**: two broker processes, ${STAMPEDE_CALLERS} callers (half on each) ask at the same moment for one connection whose token is stale (valid 60 s, inside \`REFRESH_MARGIN\`); the fake provider answers its token endpoint after ${PROVIDER_DELAY_MS} ms. Each caller has its own raw keep-alive TCP socket, opened beforehand and kept from one burst to the next (\`prepareBurst\` in bench/lib.mjs); every request's bytes are built beforehand, then all ${STAMPEDE_CALLERS} are written back to back, one per socket, at one moment, and each caller's latency runs from that moment to the end of its response (read with the same minimal HTTP/1.1 parser as the paced generator: no client objects created or parsing done by an HTTP client library during the burst). The write loop's own duration is shown beside the row. One forced refresh on each process and one unmeasured stampede (their own connections) go first, so neither process's first refresh (cold JIT, first use of its HTTP client) is in the figures; then ${STAMPEDE_ROUNDS} measured rounds, one connection each; the worst round is shown. "callers p99 − provider latency" subtracts the nominal ${PROVIDER_DELAY_MS} ms; the provider's observed latency (from its receiving the token request to the end of its response, as it records it) is shown beside it. Its floor is the same burst of ${STAMPEDE_CALLERS} callers for a fresh token (no refresh), on the same sockets, after an unmeasured one: what absorbing that many requests at once costs the broker by itself. Beside it, the same burst against two bare floor processes (bench/floor.mjs: Express 5 + one ioredis GET), after an unmeasured one: what absorbing it costs any Node service on these cores, the floor the "≤ floor" row compares with (latency targets read as no worse than the floor's). Both floors are measured as the stampede is: ${STAMPEDE_ROUNDS} bursts, the worst p99 kept.`;
}

export const scenario = { name: 'stampede', run: scenarioStampede, rows, notes, method };
