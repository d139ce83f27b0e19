// `node bench/redis-bytes.mjs [--n=100000] [--dist=dir]`: Redis bytes per connection, broken down.
// Writes n connections as bench/run.mjs's scale scenario does (dist/'s ConnectionService: PUT's
// saveTokens, then one token read), on a private redis-server, then deletes one part at a time
// (schedule, listing index, the connection keys) and reads how much `used_memory` each freed.
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { drive, installCleanup, parseInfo, startRedis } from './lib.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const arg = (name, fallback) =>
  process.argv
    .slice(2)
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3) ?? fallback;
const N = Number(arg('n', '100000'));
const DIST = resolve(ROOT, arg('dist', 'dist'));
const PROVIDER = 'bexio';
const TOKEN_BYTES = { access: 120, refresh: 64 };

installCleanup(600_000);
const redis = await startRedis();
const load = async (path) => {
  const m = await import(pathToFileURL(join(DIST, path)).href);
  return m.default ?? m;
};
const { loadConfig } = await load('config/load-config.js');
const { createBroker } = await load('create-broker.js');
const { createLogger } = await load('observability/logger.js');
const { parseImport } = await load('http/routes/parse-import.js');
const { default: Redis } = await import('ioredis');
const p = PROVIDER.toUpperCase();
const env = {
  PATH: process.env.PATH,
  NODE_ENV: 'production',
  PUBLIC_URL: 'http://127.0.0.1:1',
  REDIS_URL: redis.url,
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  INTERNAL_API_KEYS: randomBytes(32).toString('base64url'),
  ALLOWED_RETURN_URLS: 'https://app.example.com/integrations',
  LOG_LEVEL: 'warn',
  [`${p}_CLIENT_ID`]: 'bench-client',
  [`${p}_CLIENT_SECRET`]: 'bench-client-secret',
  [`${p}_AUTHORIZATION_URL`]: 'http://127.0.0.1:1/authorize',
  [`${p}_TOKEN_URL`]: 'http://127.0.0.1:1/token',
  [`${p}_REVOCATION_URL`]: 'http://127.0.0.1:1/revoke',
};
const client = new Redis(redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
const broker = createBroker(loadConfig(env), { logger: createLogger('warn'), redis: client });
const provider = broker.registry.get(PROVIDER);
const token = (bytes) => randomBytes((bytes * 3) / 4).toString('base64url');
const memory = async () => Number(parseInfo(await redis.client.info('memory')).used_memory);

const before = await memory();
const keysBefore = await redis.client.dbsize();
const run = await drive({
  concurrency: 500,
  count: N,
  work: async (i) => {
    const id = `scale-${String(i).padStart(6, '0')}`;
    const imported = parseImport(
      {
        access_token: token(TOKEN_BYTES.access),
        refresh_token: token(TOKEN_BYTES.refresh),
        expires_in: 86_400,
        scopes: ['openid', 'offline_access', 'accounting'],
      },
      'oauth2',
    );
    await broker.connections.saveTokens(
      provider,
      id,
      imported.tokens,
      imported.tokens.granted_scopes ?? provider.scopes,
    );
    await broker.connections.getToken(provider, id, { minValiditySeconds: 0, forceRefresh: false });
  },
});
if (run.failed > 0) throw run.failures[0];
const total = (await memory()) - before;
const keys = (await redis.client.dbsize()) - keysBefore;
const sampleKeys = await redis.client.keys(`*{${PROVIDER}:scale-000000}*`);
const sample = {};
for (const key of sampleKeys) {
  const type = await redis.client.type(key);
  sample[key] = {
    type,
    encoding: await redis.client.object('ENCODING', key),
    memoryUsage: await redis.client.memory('USAGE', key),
    value: type === 'hash' ? await redis.client.hgetall(key) : undefined,
  };
}
// The other keys: the listing index, the schedule, anything else the write left.
const shared = [];
let cursor = '0';
do {
  const [next, found] = await redis.client.scan(cursor, 'COUNT', 1000);
  cursor = next;
  for (const key of found) if (!key.includes(`{${PROVIDER}:`)) shared.push(key);
} while (cursor !== '0');
const parts = {};
for (const key of shared) {
  const type = await redis.client.type(key);
  const size = type === 'zset' ? await redis.client.zcard(key) : undefined;
  const enc = await redis.client.object('ENCODING', key);
  const m0 = await memory();
  await redis.client.unlink(key);
  await new Promise((r) => setTimeout(r, 200));
  parts[key] = { type, enc, size, bytesPerConnection: (m0 - (await memory())) / N };
}
const m0 = await memory();
await redis.client.flushall('SYNC');
const connectionKeys = (m0 - (await memory())) / N;
console.log(
  JSON.stringify(
    {
      n: N,
      seedSeconds: run.seconds,
      bytesPerConnection: total / N,
      beyondTokenBytes: total / N - TOKEN_BYTES.access - TOKEN_BYTES.refresh,
      keysPerConnection: keys / N,
      connectionKeysPerConnection: connectionKeys,
      shared: parts,
      sample,
    },
    null,
    2,
  ),
);
await client.quit();
await redis.client.quit();
process.exit(0);
