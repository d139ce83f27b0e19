import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { FakeUpstream } from '../helpers/fake-upstream';
import { rawRequest } from '../helpers/raw-request';

/**
 * An upstream 401 on an oauth2 connection with a refresh token: one forced refresh and one retry
 * when the body can be sent again (none, or at most 1 MiB); a larger, streamed body is answered
 * 413 proxy_body_too_large and never sent twice.
 */
let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await FakeUpstream.start();
});
const env = useBrokerOnRedis(() => ({
  JOBBER_API_BASE_URL: `${upstream.url}/api`,
  PROCESS_STREET_AUTH_MODE: 'api_key',
  PROCESS_STREET_API_BASE_URL: `${upstream.url}/ps`,
}));
afterAll(() => upstream.close());

/** The API accepts the tokens the fake provider issued, nothing else. */
function acceptIssuedTokens(): void {
  upstream.on((req, res, record) => {
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!env.fake.issued.some((t) => t.access_token === token)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      return void res.end('{"error":"invalid_token"}');
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ ok: true, bytes: record.body.length }));
  });
}

async function importRevoked(id: string, withRefresh = true): Promise<string> {
  const refresh = `rt-live-${id}`;
  if (withRefresh) env.fake.liveRefreshTokens.add(refresh);
  const put = await env.broker.api(`/internal/connections/jobber/${id}`, {
    method: 'PUT',
    body: {
      access_token: `revoked-${id}`,
      ...(withRefresh ? { refresh_token: refresh } : {}),
      expires_in: 3600,
    },
  });
  expect(put.status).toBe(201);
  return refresh;
}

const send = (method: string, target: string, body?: Buffer, headers: Record<string, string> = {}) =>
  rawRequest(env.broker.internalUrl, method, target, headers, body);

beforeEach(() => acceptIssuedTokens());

describe('proxy: 401 → one refresh → one retry', () => {
  it('refreshes once and retries a GET with the new token', async () => {
    const refresh = await importRevoked('get-1');
    const refreshesBefore = env.fake.refreshRequests.length;
    const before = upstream.requests.length;
    const res = await send('GET', '/internal/proxy/jobber/get-1/graphql?x=1');
    expect(res.status).toBe(200);
    expect(env.fake.refreshRequests.length).toBe(refreshesBefore + 1);
    expect(env.fake.refreshRequests[refreshesBefore]!.params.refresh_token).toBe(refresh);
    const seen = upstream.requests.slice(before);
    expect(seen.map((r) => r.headers.authorization)).toEqual([
      'Bearer revoked-get-1',
      `Bearer ${env.fake.issued[env.fake.issued.length - 1]!.access_token}`,
    ]);
    expect(seen.map((r) => r.url)).toEqual(['/api/graphql?x=1', '/api/graphql?x=1']);
  });

  it('replays a buffered body of up to 1 MiB byte for byte', async () => {
    await importRevoked('post-1');
    const body = Buffer.alloc(1024 * 1024, 0x5a);
    const before = upstream.requests.length;
    const res = await send('POST', '/internal/proxy/jobber/post-1/graphql', body, {
      'content-type': 'application/octet-stream',
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests.slice(before);
    expect(seen).toHaveLength(2);
    expect(seen.every((r) => r.body.equals(body))).toBe(true);
  });

  it('retries once only: a second 401 is answered as the upstream gave it', async () => {
    await importRevoked('twice');
    upstream.on((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' });
      res.end('still no');
    });
    const refreshesBefore = env.fake.refreshRequests.length;
    const before = upstream.requests.length;
    const res = await send('GET', '/internal/proxy/jobber/twice/graphql');
    expect(res.status).toBe(401);
    expect(res.body).toBe('still no');
    expect(res.headers['broker-error']).toBeUndefined();
    expect(res.headers['www-authenticate']).toBe('Bearer error="insufficient_scope"');
    expect(upstream.requests.length).toBe(before + 2);
    expect(env.fake.refreshRequests.length).toBe(refreshesBefore + 1);
  });

  it('answers 413 proxy_body_too_large for a streamed body over 1 MiB, sent once and not retried', async () => {
    await importRevoked('big');
    const body = Buffer.alloc(3 * 1024 * 1024, 0x41);
    const refreshesBefore = env.fake.refreshRequests.length;
    const before = upstream.requests.length;
    const res = await send('PUT', '/internal/proxy/jobber/big/upload', body, {
      'content-type': 'application/octet-stream',
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).code).toBe('proxy_body_too_large');
    expect(res.headers['broker-error']).toBe('proxy_body_too_large');
    expect(upstream.requests.length).toBe(before + 1);
    expect(env.fake.refreshRequests.length).toBe(refreshesBefore);
  });

  it('passes a 401 through, without a refresh, for a connection without a refresh token', async () => {
    await importRevoked('no-rt', false);
    const refreshesBefore = env.fake.tokenRequests.length;
    const before = upstream.requests.length;
    const res = await send('GET', '/internal/proxy/jobber/no-rt/graphql');
    expect(res.status).toBe(401);
    expect(res.headers['broker-error']).toBeUndefined();
    expect(upstream.requests.length).toBe(before + 1);
    expect(env.fake.tokenRequests.length).toBe(refreshesBefore);
  });

  it('passes a 401 through for an api_key connection (nothing to refresh)', async () => {
    const put = await env.broker.api('/internal/connections/process-street/k-1', {
      method: 'PUT',
      body: { api_key: 'bad-key' },
    });
    expect(put.status).toBe(201);
    const before = upstream.requests.length;
    const res = await send('GET', '/internal/proxy/process-street/k-1/workflows');
    expect(res.status).toBe(401);
    expect(upstream.requests.length).toBe(before + 1);
    expect(upstream.requests[before]!.headers['x-api-key']).toBe('bad-key');
  });

  it('answers 409 reauthorization_required when the provider refuses the refresh token, and does not retry', async () => {
    const put = await env.broker.api('/internal/connections/jobber/dead', {
      method: 'PUT',
      body: { access_token: 'revoked-dead', refresh_token: 'rt-not-live', expires_in: 3600 },
    });
    expect(put.status).toBe(201);
    const before = upstream.requests.length;
    const res = await send('GET', '/internal/proxy/jobber/dead/graphql');
    expect(res.status).toBe(409);
    expect(res.headers['broker-error']).toBe('reauthorization_required');
    expect(upstream.requests.length).toBe(before + 1);
  });
});
