// A provider's token endpoint for the benchmark, on plain node:http so it never is the
// bottleneck. POST /token answers after a delay (POST /_config?delay_ms=N changes it) with a fresh
// access and refresh token each time; GET /_stats counts token calls by grant type and tells how
// long the token requests actually took here, from the request's arrival (its head read) to the end
// of the response (`last_token_ms`, and `token_ms` for the last 100, oldest first): the delay as
// observed, timer lateness included; `last_token_at` is when the last one arrived, in ms since the
// epoch with sub-ms precision (performance.timeOrigin + performance.now(), comparable with the
// bench's own clock on the same machine).
// Env: PORT.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { URLSearchParams } from 'node:url';

let delayMs = 0;
const stats = {
  token_calls: 0,
  refresh_calls: 0,
  code_calls: 0,
  last_token_ms: null,
  last_token_at: null,
  token_ms: [],
};
const KEEP_TOKEN_MS = 100;
let n = 0;

const server = http.createServer((req, res) => {
  const arrived = performance.now();
  const url = new URL(req.url, 'http://x');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    if (req.method === 'POST' && url.pathname === '/token') {
      const params = new URLSearchParams(body);
      stats.token_calls += 1;
      if (params.get('grant_type') === 'refresh_token') stats.refresh_calls += 1;
      if (params.get('grant_type') === 'authorization_code') stats.code_calls += 1;
      n += 1;
      stats.last_token_at = performance.timeOrigin + arrived;
      res.once('finish', () => {
        const ms = performance.now() - arrived;
        stats.last_token_ms = ms;
        stats.token_ms.push(ms);
        if (stats.token_ms.length > KEEP_TOKEN_MS) stats.token_ms.shift();
      });
      const answer = JSON.stringify({
        access_token: `at-${n}-${randomBytes(48).toString('base64url')}`,
        refresh_token: `rt-${n}-${randomBytes(24).toString('base64url')}`,
        token_type: 'bearer',
        expires_in: 3600,
      });
      const send = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(answer);
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/revoke') return void res.writeHead(200).end();
    if (url.pathname === '/_config') {
      delayMs = Number(url.searchParams.get('delay_ms') ?? 0);
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ delay_ms: delayMs }));
    }
    if (url.pathname === '/_stats') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    }
    res.writeHead(404).end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
