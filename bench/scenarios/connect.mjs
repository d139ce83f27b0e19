// The connect flow: connect links, /auth redirects and completed callbacks per second, with the
// Redis commands each request runs.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { commandCalls, diffCalls, drive, freePort, percentile, request, sleep } from '../lib.mjs';
import { startBroker } from '../suite/processes.mjs';
import { f0, f1, ms } from '../suite/format.mjs';
import {
  agent,
  AUTH,
  CLIENTS,
  HERE,
  log,
  PROVIDER,
  QUICK,
  results,
  RETURN_TO,
  T,
} from '../suite/settings.mjs';

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
  const wire = await connectRoundTrips(env);
  results.scenarios.connect = { links: links$, auth: auth$, callback: callback$, wire };
}

const WIRE_FLOWS = QUICK ? 40 : 100;

/**
 * Commands and round trips per step of one flow at a time, counted inside a second broker process
 * (bench/count-redis-round-trips.mjs, preloaded, wraps ioredis's sendCommand). Each step's count is
 * read once the broker has nothing awaiting Redis for a moment (so with what it does after
 * answering, such as the audit entry); the round trips made by the time the response ended are
 * shown beside. Per step, the median of WIRE_FLOWS flows: a rare background command (the sweeper)
 * does not move it. A third step: the same browser starting another connect with its cookie.
 */
async function connectRoundTrips(env) {
  const countPort = await freePort();
  const broker = await startBroker(
    'broker-counted',
    env.redis.url,
    env.fake.url,
    ['--import', pathToFileURL(join(HERE, 'count-redis-round-trips.mjs')).href],
    { COUNT_REDIS_PORT: String(countPort) },
  );
  const counter = `http://127.0.0.1:${countPort}/`;
  const counts = async (method = 'GET') => JSON.parse((await request(agent, counter, { method })).body);
  const settle = async () => {
    let quiet = 0;
    while (quiet < 3) {
      await sleep(10);
      quiet = (await counts()).pending === 0 ? quiet + 1 : 0;
    }
  };
  const step = async (send) => {
    await settle();
    await counts('POST');
    const res = await send();
    await settle();
    return { res, settled: await counts() };
  };
  const samples = { auth: [], callback: [], authAgain: [] };
  const link = async (i) => {
    const res = await request(agent, `${broker.internalUrl}/internal/connect-sessions`, {
      method: 'POST',
      headers: AUTH,
      body: { provider: PROVIDER, connection_id: `wire-${i}`, return_to: RETURN_TO },
    });
    if (res.status !== 201) throw new Error(`connect-sessions answered ${res.status}`);
    return JSON.parse(res.body).url;
  };
  try {
    for (let i = 0; i < WIRE_FLOWS; i++) {
      const url = await link(i);
      const auth = await step(() => request(agent, url));
      if (auth.res.status !== 302) throw new Error(`/auth answered ${auth.res.status}`);
      const state = new URL(auth.res.headers.location).searchParams.get('state');
      const cookie = cookieHeader(auth.res.headers['set-cookie']);
      const callback = await step(() =>
        request(
          agent,
          `${broker.publicUrl}/callback/${PROVIDER}?code=code-${i}&state=${encodeURIComponent(state)}`,
          { headers: { cookie } },
        ),
      );
      if (callback.res.status !== 303) throw new Error(`/callback answered ${callback.res.status}`);
      // The same browser starts another connect: it brings the session cookie of the first.
      const again = await link(i);
      const authAgain = await step(() => request(agent, again, { headers: { cookie } }));
      if (authAgain.res.status !== 302)
        throw new Error(`/auth with a cookie answered ${authAgain.res.status}`);
      samples.auth.push(auth);
      samples.callback.push(callback);
      samples.authAgain.push(authAgain);
    }
  } finally {
    await broker.stop();
  }
  const median = (xs) => percentile(xs, 0.5);
  const summary = (list) => {
    const names = new Set(list.flatMap((x) => Object.keys(x.settled.commands)));
    const commands = {};
    for (const name of [...names].sort()) {
      const n = median(list.map((x) => x.settled.commands[name] ?? 0));
      if (n > 0) commands[name] = n;
    }
    return {
      commands,
      total: median(list.map((x) => x.settled.total)),
      roundTrips: median(list.map((x) => x.settled.roundTrips)),
      roundTripsBeforeResponse: median(list.map((x) => x.settled.beforeResponse)),
    };
  };
  const wire = {
    flows: WIRE_FLOWS,
    auth: summary(samples.auth),
    callback: summary(samples.callback),
    authAgain: summary(samples.authAgain),
  };
  for (const name of ['auth', 'callback', 'authAgain'])
    log(`connect flow, wire, ${name}: ${JSON.stringify(wire[name])}`);
  return wire;
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
  // Round trips: one browser at a time, counted on the wire (see connectRoundTrips).
  const wire = (x) =>
    `${x.total} commands (${Object.entries(x.commands)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}), ${x.roundTripsBeforeResponse} round trips before the response`;
  out.push(['/auth Redis round trips', c.wire.auth.roundTrips, '', '', '', wire(c.wire.auth)]);
  out.push([
    '/auth with a session cookie, round trips',
    c.wire.authAgain.roundTrips,
    '',
    '',
    '',
    wire(c.wire.authAgain),
  ]);
  out.push(['callback Redis round trips', c.wire.callback.roundTrips, '', '', '', wire(c.wire.callback)]);
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
  return `- **Connect flow**: ${CLIENTS} concurrent loops, each phase ${T.phase / 1000} s: connect links from the internal API, then \`GET /auth\` with each link (a fresh browser: no cookie; answers 302 and sets the session cookie), then \`GET /callback\` with that cookie and the \`state\` (the fake provider's token endpoint answers at once; the broker stores the tokens and answers 303). "Redis" lists the Redis commands per request (INFO commandstats). No floor: there is no simpler thing doing the same work. Round trips are counted apart, one browser at a time (${WIRE_FLOWS} flows, the median per step), in a second broker process with bench/count-redis-round-trips.mjs preloaded: it wraps ioredis's \`sendCommand\` and counts a new round trip when a command is sent while none awaits its reply, or after a reply reached the broker's code since the last one was sent; commands sent together (a pipeline, \`Promise.all\`) share one. A third step there: the same browser opening another link with its session cookie.`;
}

export const scenario = { name: 'connect', run: scenarioConnect, rows, notes, method };
