// The floor of the token API: a bare Express 5 app that does one ioredis GET of a value the size
// of a broker record and answers the token API's JSON shape. No auth, no decryption, no metrics:
// what any Node service reading one value from Redis costs on this machine.
// Env: PORT, REDIS_URL, FLOOR_PREFIX.
import express from 'express';
import Redis from 'ioredis';

const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1 });
const prefix = process.env.FLOOR_PREFIX ?? 'floor:';
const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/internal/connections/:provider/:connection_id/token', async (req, res) => {
  const raw = await redis.get(`${prefix}{${req.params.provider}:${req.params.connection_id}}`);
  if (raw === null) return res.status(404).json({ code: 'connection_not_found' });
  const v = JSON.parse(raw);
  res.json({
    auth_mode: 'oauth2',
    access_token: v.access_token,
    token_type: v.token_type,
    expires_at: v.expires_at,
    scopes: v.scopes,
  });
});
app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));

const server = app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  redis.disconnect();
});
