// The token API's floor without a framework: bare node:http doing one ioredis GET of a value the
// size of a broker record and answering the token API's JSON shape (the same body as
// bench/floor.mjs, with the headers Express's res.json would set). No auth, no decryption, no
// metrics, no logging: the least any Node service reading one value from Redis can cost here.
// Env: PORT, REDIS_URL, FLOOR_PREFIX (as bench/floor.mjs).
import { createServer } from 'node:http';
import Redis from 'ioredis';

const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1 });
const prefix = process.env.FLOOR_PREFIX ?? 'floor:';
const TOKEN_URL = /^\/internal\/connections\/([^/?]+)\/([^/?]+)\/token(?:\?.*)?$/;

function answer(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

const server = createServer((req, res) => {
  if (req.url === '/healthz') return answer(res, 200, { status: 'ok' });
  const match = req.method === 'GET' ? TOKEN_URL.exec(req.url ?? '') : null;
  if (!match) return answer(res, 404, { code: 'not_found' });
  redis.get(`${prefix}{${match[1]}:${match[2]}}`).then(
    (raw) => {
      if (raw === null) return answer(res, 404, { code: 'connection_not_found' });
      const v = JSON.parse(raw);
      answer(res, 200, {
        auth_mode: 'oauth2',
        access_token: v.access_token,
        token_type: v.token_type,
        expires_at: v.expires_at,
        scopes: v.scopes,
      });
    },
    () => answer(res, 503, { code: 'store_unavailable' }),
  );
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  redis.disconnect();
});
