// The connect flow: connect links, /auth redirects and completed callbacks per second, with the
// Redis commands each request runs.
import { commandCalls, diffCalls, drive, percentile, request } from '../lib.mjs';
import { f0, f1, ms } from '../suite/format.mjs';
import { agent, AUTH, CLIENTS, log, PROVIDER, results, RETURN_TO, T } from '../suite/settings.mjs';

function cookieHeader(setCookie) {
  return (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
    .map((c) => c.split(';')[0])
    .join('; ');
}

export async function scenarioConnect(env) {
  const { broker, redis } = env;
  const phase = async (name, options) => {
    await redis.client.config('RESETSTAT');
    const run = await drive({ concurrency: CLIENTS, durationMs: T.phase, ...options });
    const calls = diffCalls({}, await commandCalls(redis.client));
    delete calls['config|resetstat'];
    delete calls.config;
    delete calls.info;
    const perItem = {};
    for (const [k, v] of Object.entries(calls)) perItem[k] = run.done > 0 ? v / run.done : 0;
    if (run.failed > 0)
      throw new Error(`connect flow, ${name}: ${run.failed} failed, first: ${run.failures[0]?.message}`);
    log(`connect flow, ${name}: ${run.done} in ${run.seconds.toFixed(1)} s = ${run.rate.toFixed(0)}/s`);
    return {
      done: run.done,
      rate: run.rate,
      p50: percentile(run.latencies, 0.5),
      p99: percentile(run.latencies, 0.99),
      redisCalls: perItem,
    };
  };

  const links = [];
  const links$ = await phase('connect links (POST /internal/connect-sessions)', {
    count: 50_000,
    work: async (i) => {
      const res = await request(agent, `${broker.internalUrl}/internal/connect-sessions`, {
        method: 'POST',
        headers: AUTH,
        body: { provider: PROVIDER, connection_id: `flow-${i}`, return_to: RETURN_TO },
      });
      if (res.status !== 201) throw new Error(`connect-sessions answered ${res.status}: ${res.body}`);
      links.push(JSON.parse(res.body).url);
    },
  });
  const flows = [];
  const auth$ = await phase('GET /auth (302 to the provider)', {
    count: links.length,
    work: async (i) => {
      const res = await request(agent, links[i]);
      if (res.status !== 302) throw new Error(`/auth answered ${res.status}`);
      const state = new URL(res.headers.location).searchParams.get('state');
      flows.push({ cookie: cookieHeader(res.headers['set-cookie']), state });
    },
  });
  const callback$ = await phase('GET /callback (code exchange, store, 303)', {
    count: flows.length,
    work: async (i) => {
      const { cookie, state } = flows[i];
      const res = await request(
        agent,
        `${broker.publicUrl}/callback/${PROVIDER}?code=code-${i}&state=${encodeURIComponent(state)}`,
        {
          headers: { cookie },
        },
      );
      if (res.status !== 303 || !String(res.headers.location).includes('connected=')) {
        throw new Error(`/callback answered ${res.status} ${res.headers.location ?? ''}`);
      }
    },
  });
  results.scenarios.connect = { links: links$, auth: auth$, callback: callback$ };
}

/** Its rows of the results table, the section heading first (bench/run.mjs numbers it). */
function rows(s) {
  const out = [];
  if (!s.connect) return out;
  const c = s.connect;
  // Background work (the sweeper) shows as fractions: only what each request does is listed.
  const calls = (x) =>
    Object.entries(x.redisCalls)
      .filter(([, v]) => v >= 0.5)
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([k, v]) => `${k}×${f1(v)}`)
      .join(' ');
  out.push([`Connect flow (${CLIENTS} concurrent browsers, provider answers at once)`, '', '', '', '', '']);
  out.push([
    'connect links /s (internal POST)',
    f0(c.links.rate),
    '',
    '',
    '',
    `p99 ${ms(c.links.p99)}; Redis per request: ${calls(c.links)}`,
  ]);
  out.push([
    '/auth redirects /s',
    f0(c.auth.rate),
    '',
    '',
    '',
    `p99 ${ms(c.auth.p99)}; Redis per request: ${calls(c.auth)}`,
  ]);
  out.push([
    'complete callbacks /s',
    f0(c.callback.rate),
    '',
    '',
    '',
    `p99 ${ms(c.callback.p99)}; Redis per request: ${calls(c.callback)}`,
  ]);
  return out;
}

/** What its figures mean, where a number alone would mislead (under "Reading the figures"). */
function notes(s) {
  return s.connect
    ? [
        'Redis per request counts commands from INFO commandstats, including those a Lua script runs (an `evalsha` of the connection write shows with its `hget`/`hset`/`hdel`/`del`): round trips are the commands the broker sends itself (`evalsha`, `get`, `set`, `zadd`, `hgetall`).',
      ]
    : [];
}

/** Its bullet under "How it is measured" in bench/results.md. */
function method() {
  return `- **Connect flow**: ${CLIENTS} concurrent loops, each phase ${T.phase / 1000} s: connect links from the internal API, then \`GET /auth\` with each link (a fresh browser: no cookie; answers 302 and sets the session cookie), then \`GET /callback\` with that cookie and the \`state\` (the fake provider's token endpoint answers at once; the broker stores the tokens and answers 303). "Redis" lists the Redis commands per request (INFO commandstats). No floor: there is no simpler thing doing the same work.`;
}

export const scenario = { name: 'connect', run: scenarioConnect, rows, notes, method };
