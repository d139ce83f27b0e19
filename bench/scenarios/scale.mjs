// Scale: many more connections written through the broker's own code, Redis bytes per connection,
// the token API over all of them against the first 1,000, and listing them all.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  commandCalls,
  cpuSeconds,
  diffCalls,
  drive,
  indexedCount,
  parseInfo,
  request,
  rssSampler,
} from '../lib.mjs';
import { f0, f1, f2, ms, verdict } from '../suite/format.mjs';
import {
  ACCESS_BYTES,
  agent,
  AUTH,
  CLIENTS,
  DIST,
  log,
  PROVIDER,
  QUICK,
  REFRESH_BYTES,
  results,
  SCOPES,
  T,
  TOKEN_BYTES,
} from '../suite/settings.mjs';
import { connectionIds, interleaved, pacedLog, randomToken, tokenLoad } from '../suite/token-load.mjs';

const SCALE_CONNECTIONS = QUICK ? 20_000 : 100_000;

export async function scenarioScale(env) {
  const { broker, redis } = env;
  const memory = async () => Number(parseInfo(await redis.client.info('memory')).used_memory);
  const keysBefore = await redis.client.dbsize();
  const before = await memory();
  log(`scale: writing ${SCALE_CONNECTIONS} connections with the broker's own ConnectionService`);
  const seeded = await seedWithBrokerCode(broker.env, redis.url, SCALE_CONNECTIONS);
  log(`scale: written and read once in ${seeded.seconds.toFixed(1)} s`);
  const after = await memory();
  const keysAdded = (await redis.client.dbsize()) - keysBefore;
  const perConnection = (after - before) / SCALE_CONNECTIONS;
  const sample = await redis.client.hgetall(`ob:{${PROVIDER}:${seeded.ids[0]}}:conn`);
  // The sealed tokens sit in their own string key beside the hash (older builds: a hash field).
  const sealedValue =
    sample.sealed ?? (await redis.client.getBuffer(`ob:{${PROVIDER}:${seeded.ids[0]}}:sealed`));
  const encoding = await redis.client.object('ENCODING', `ob:{${PROVIDER}:${seeded.ids[0]}}:conn`);
  const fieldBytes = Object.entries(sample).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );

  const allIds = [...env.tokenIds, ...seeded.ids];
  log(
    `scale: token API over ${allIds.length} connections, ${CLIENTS} clients, ${T.max / 1000} s, then paced at ${env.fixedRate} req/s`,
  );
  await tokenLoad(broker.internalUrl, allIds, { durationMs: T.warm });
  // The same broker over all connections and over the first 1,000, alternating.
  const targets = [
    { base: broker.internalUrl, pid: broker.pid, ids: allIds },
    { base: broker.internalUrl, pid: broker.pid, ids: env.tokenIds },
  ];
  const [max, max1k] = await interleaved(targets, allIds, { durationMs: T.max });
  const [fixed, fixed1k] = await interleaved(targets, allIds, {
    durationMs: T.fixed,
    rate: env.fixedRate,
    slices: 2,
  });
  pacedLog(`scale: token API paced at ${env.fixedRate} req/s`, [fixed, fixed1k]);

  log('scale: paging through GET /internal/connections?limit=1000');
  await redis.client.config('RESETSTAT');
  const sampler = rssSampler(broker.pid);
  const cpu0 = { broker: cpuSeconds(broker.pid), redis: cpuSeconds(redis.proc.pid) };
  let parseMs = 0;
  const t0 = performance.now();
  let cursor = '';
  let pages = 0;
  let listed = 0;
  for (;;) {
    const res = await request(
      agent,
      `${broker.internalUrl}/internal/connections?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      { headers: AUTH },
    );
    if (res.status !== 200) throw new Error(`listing answered ${res.status}: ${res.body}`);
    const p0 = performance.now();
    const page = JSON.parse(res.body);
    parseMs += performance.now() - p0;
    pages += 1;
    listed += page.connections.length;
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  const listSeconds = (performance.now() - t0) / 1000;
  const listCpu = {
    broker: cpuSeconds(broker.pid) - cpu0.broker,
    redis: cpuSeconds(redis.proc.pid) - cpu0.redis,
    client: parseMs / 1000,
  };
  const listPeakRss = sampler.stop();
  const calls = diffCalls({}, await commandCalls(redis.client));
  const totalConnections = await indexedCount(redis.client);
  results.memory.underLoadScale = Math.max(max.peakRss, fixed.peakRss);
  results.memory.listing = listPeakRss;
  results.scenarios.scale = {
    n: SCALE_CONNECTIONS,
    seedSeconds: seeded.seconds,
    perConnection,
    keysPerConnection: keysAdded / SCALE_CONNECTIONS,
    fieldBytes,
    sealedBytes: sealedValue ? Buffer.byteLength(sealedValue) : 0,
    encoding,
    max,
    fixed,
    max1k,
    fixed1k,
    rate: env.fixedRate,
    listing: {
      cpu: listCpu,
      seconds: listSeconds,
      pages,
      listed,
      totalConnections,
      calls,
      scans: (calls.keys ?? 0) + (calls.scan ?? 0),
    },
  };
}

/** Writes connections exactly as a PUT would, through dist/'s ConnectionService, many at a time. */
async function seedWithBrokerCode(env, redisUrl, n) {
  const load = async (path) => {
    const m = await import(pathToFileURL(join(DIST, path)).href);
    return m.default ?? m;
  };
  const { loadConfig } = await load('config/load-config.js');
  const { createBroker } = await load('create-broker.js');
  const { createLogger } = await load('observability/logger.js');
  const { parseImport } = await load('http/routes/parse-import.js');
  const { default: Redis } = await import('ioredis');
  const client = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const seeder = createBroker(loadConfig({ ...env, REDIS_URL: redisUrl }), {
    logger: createLogger('warn'),
    redis: client,
  });
  const provider = seeder.registry.get(PROVIDER);
  const ids = connectionIds('scale', n);
  try {
    const run = await drive({
      concurrency: 500,
      count: n,
      work: async (i) => {
        const imported = parseImport(
          {
            access_token: randomToken(ACCESS_BYTES),
            refresh_token: randomToken(REFRESH_BYTES),
            expires_in: 86_400,
            scopes: SCOPES,
          },
          'oauth2',
        );
        await seeder.connections.saveTokens(
          provider,
          ids[i],
          imported.tokens,
          imported.tokens.granted_scopes ?? provider.scopes,
        );
        // Read once through the token path, as the first 1,000 were: the first read of a connection
        // notes it for refresh-ahead (a Lua write), later reads do not; the runs compare later reads.
        await seeder.connections.getToken(provider, ids[i], { minValiditySeconds: 0, forceRefresh: false });
      },
    });
    if (run.failed > 0) throw run.failures[0];
    return { ids, seconds: run.seconds };
  } finally {
    await client.quit();
  }
}

/** Its rows of the results table, the section heading first (bench/run.mjs numbers it). */
function rows(s) {
  const out = [];
  if (!s.scale) return out;
  const sc = s.scale;
  const beyond = sc.perConnection - TOKEN_BYTES;
  out.push([`Scale (${sc.n.toLocaleString('en')} more connections)`, '', '', '', '', '']);
  out.push([
    'Redis bytes per connection',
    f0(sc.perConnection),
    '',
    '',
    '',
    `hash ${sc.encoding}, ${sc.fieldBytes} B of fields+values (sealed ${sc.sealedBytes} B), ${f2(sc.keysPerConnection)} keys/connection, plus index and schedule entries`,
  ]);
  out.push([`… beyond the ${TOKEN_BYTES} token bytes`, f0(beyond), '', '', '≤ 600', verdict(beyond <= 600)]);
  const against1k = (label, a, b, fmt) => out.push([label, fmt(a), fmt(b), f2(a / b), '≈ 1', '']);
  against1k(`token req/s at ${CLIENTS} clients, all vs first 1,000`, sc.max.rps, sc.max1k.rps, f0);
  against1k(`token p99 at ${CLIENTS} clients, all vs first 1,000`, sc.max.p99, sc.max1k.p99, ms);
  against1k(`token p99 at ${sc.rate} req/s paced, all vs first 1,000`, sc.fixed.p99, sc.fixed1k.p99, ms);
  const l = sc.listing;
  out.push([
    `list all ${l.listed.toLocaleString('en')} (${l.pages} pages of 1,000)`,
    `${f1(l.seconds)} s`,
    '',
    '',
    'no KEYS/SCAN',
    `${verdict(l.scans === 0 && l.listed === l.totalConnections)}; ${f0(l.listed / l.seconds)} connections/s; CPU: broker ${f1(l.cpu.broker)} s, Redis ${f1(l.cpu.redis)} s, client JSON.parse ${f1(l.cpu.client)} s; Redis commands: ${Object.entries(
      l.calls,
    )
      .filter(([k]) => !k.startsWith('config') && k !== 'info')
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`,
  ]);
  return out;
}

/** What its figures mean, where a number alone would mislead (under "Reading the figures"). */
function notes(s) {
  return s.scale?.encoding === 'hashtable'
    ? [
        `Redis stores a hash as a compact listpack only while every value is at most \`hash-max-listpack-value\` (64 B by default); the sealed tokens (${s.scale.sealedBytes} B here) always exceed it, so each connection's hash is a hashtable, at roughly 60-80 B of overhead per field on top of the ${s.scale.fieldBytes} B of fields and values. The listing index and the due-work schedule add about 140 B each per connection.`,
      ]
    : [];
}

/** Its bullet under "How it is measured" in bench/results.md. */
function method() {
  return `- **Scale**: ${SCALE_CONNECTIONS.toLocaleString('en')} more connections written through the broker's own ConnectionService from dist/ (as \`PUT\` does) and read once through it (the first read of a connection notes it for refresh-ahead, one Lua write; the token runs then compare steady-state reads). Bytes per connection = the growth of Redis \`used_memory\` ÷ ${SCALE_CONNECTIONS.toLocaleString('en')}: the record's hash, its entries in the listing index and in the due-work schedule. Then the token API over all connections (closed loop, then paced at the fixed rate, against the first 1,000 in alternating slices), and paging through \`GET /internal/connections?limit=1000\` with INFO commandstats showing what Redis ran (no \`KEYS\`, no \`SCAN\`).`;
}

export const scenario = { name: 'scale', run: scenarioScale, rows, notes, method };
