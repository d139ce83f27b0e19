import { providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';

const KEY_A = 'first-internal-key-aaaaaaaaaaaaaaaaaaaaaaaa';
const KEY_B = 'second-internal-key-bbbbbbbbbbbbbbbbbbbbbbb';

async function call(base: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // a page, not JSON
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', body, text };
}

describe('internal API authentication (INTERNAL_API_KEYS)', () => {
  const t = useBrokerOnRedis((fakeUrl) => ({
    INTERNAL_API_KEYS: `${KEY_A}, ${KEY_B}`,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    ...providerEnv('bonjoro', fakeUrl),
  }));

  const refused: Array<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['a wrong key', { authorization: 'Bearer not-the-key-at-all-0123456789abcdef' }],
    ['a prefix of a valid key', { authorization: `Bearer ${KEY_A.slice(0, -1)}` }],
    ['a valid key with one more character', { authorization: `Bearer ${KEY_A}x` }],
    ['both keys joined by a comma', { authorization: `Bearer ${KEY_A},${KEY_B}` }],
    ['a valid key under the Basic scheme', { authorization: `Basic ${KEY_A}` }],
    ['the Bearer scheme without a key', { authorization: 'Bearer ' }],
  ];

  it.each(refused)('answers 401 unauthorized as problem+json to %s', async (_name, headers) => {
    for (const path of [
      '/internal/providers',
      '/internal/connections',
      '/internal/connections/bonjoro/acct-1/token',
    ]) {
      const res = await call(t.broker.internalUrl, path, headers);
      expect(res.body.code).toBe('unauthorized');
      expect(res.status).toBe(401);
      expect(res.contentType).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        status: 401,
        type: expect.any(String),
        title: expect.any(String),
        detail: expect.any(String),
      });
    }
  });

  it('refuses an unknown /internal path without a key with 401, not 404', async () => {
    const res = await call(t.broker.internalUrl, '/internal/no-such-route');
    expect(res.body.code).toBe('unauthorized');
    expect(res.status).toBe(401);
  });

  it.each([
    // The router matches paths case-insensitively: a differently cased path must not slip past the key.
    '/INTERNAL/connections',
    '/Internal/providers',
    '/internal//providers',
    '/no-such-path',
  ])('refuses %s without a key: every path but /readyz and /metrics needs one', async (path) => {
    const res = await call(t.broker.internalUrl, path);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthorized');
  });

  it('answers a differently cased path the same as its route once the key is given', async () => {
    const res = await call(t.broker.internalUrl, '/INTERNAL/connections', {
      authorization: `Bearer ${KEY_A}`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ connections: [], next_cursor: null });
  });

  it.each([
    ['the first key', KEY_A],
    ['the second key', KEY_B],
  ])('accepts %s of the comma separated list', async (_name, key) => {
    const res = await call(t.broker.internalUrl, '/internal/providers', { authorization: `Bearer ${key}` });
    expect(res.status).toBe(200);
    expect(res.body.providers.map((p: { id: string }) => p.id)).toContain('bonjoro');
  });

  it('accepts the scheme name in any case (RFC 7235 §2.1)', async () => {
    const res = await call(t.broker.internalUrl, '/internal/connections', {
      authorization: `bearer ${KEY_B}`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ connections: [], next_cursor: null });
  });

  it('serves /readyz and /metrics on the internal listener', async () => {
    expect((await call(t.broker.internalUrl, '/readyz')).status).toBe(200);
    const metrics = await call(t.broker.internalUrl, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^# (HELP|TYPE) /m);
  });

  it.each([
    '/internal/providers',
    '/internal/connections',
    '/internal/connections/bonjoro/acct-1/token',
    '/internal/openapi.json',
    '/readyz',
    '/metrics',
  ])('answers 404 for %s on the public listener, even with a valid key', async (path) => {
    const res = await call(t.broker.publicUrl, path, {
      authorization: `Bearer ${KEY_A}`,
      accept: 'application/json',
    });
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('providers');
    expect(res.text).not.toMatch(/# (HELP|TYPE)/);
  });

  it('answers an unknown path on the public listener the same 404 as an internal one', async () => {
    const unknown = await call(t.broker.publicUrl, '/definitely-not-here', { accept: 'application/json' });
    const internal = await call(t.broker.publicUrl, '/internal/providers', { accept: 'application/json' });
    expect(internal.status).toBe(unknown.status);
    // The same answer but for the request id each answer carries (it links an answer to its log line).
    const withoutRequestId = (body: unknown): unknown =>
      typeof body === 'object' && body !== null
        ? { ...(body as Record<string, unknown>), request_id: undefined }
        : body;
    expect(withoutRequestId(internal.body)).toEqual(withoutRequestId(unknown.body));
    expect(internal.contentType).toBe(unknown.contentType);
  });

  it('answers /healthz 200 on the public listener', async () => {
    const res = await call(t.broker.publicUrl, '/healthz');
    expect(res.status).toBe(200);
  });

  // Last: it stops this file's Redis.
  it('keeps /healthz at 200 while Redis is down, when /readyz answers 503', async () => {
    await t.redis.stop();
    expect((await call(t.broker.publicUrl, '/healthz')).status).toBe(200);
    expect((await call(t.broker.internalUrl, '/readyz')).status).toBe(503);
  });
});
