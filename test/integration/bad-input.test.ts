import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';

interface BadInput {
  name: string;
  method?: string;
  path: string;
  /** A string is sent as it is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
  detail?: RegExp;
}

const TOKEN = '/internal/connections/bonjoro/existing/token';
const CONN = '/internal/connections/bonjoro/existing';
const SESSIONS = '/internal/connect-sessions';
const okSession = { provider: 'bonjoro', connection_id: 'acct-1' };
const longId = 'a'.repeat(201);

const cases: BadInput[] = [
  // Bodies that are not a JSON object
  {
    name: 'a body that is not JSON',
    method: 'POST',
    path: SESSIONS,
    body: '{"provider": "bonjoro", ',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a body that is a JSON array',
    method: 'POST',
    path: SESSIONS,
    body: '[{"provider":"bonjoro"}]',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a body that is a JSON string',
    method: 'POST',
    path: SESSIONS,
    body: '"bonjoro"',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a body that is JSON null',
    method: 'POST',
    path: SESSIONS,
    body: 'null',
    status: 400,
    code: 'invalid_request',
  },
  { name: 'an empty body', method: 'POST', path: SESSIONS, body: '', status: 400, code: 'invalid_request' },
  {
    name: 'a 1 MB body',
    method: 'POST',
    path: SESSIONS,
    body: JSON.stringify({ ...okSession, pad: 'x'.repeat(1024 * 1024) }),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'a body in an unsupported charset',
    method: 'POST',
    path: SESSIONS,
    body: JSON.stringify(okSession),
    headers: { 'content-type': 'application/json; charset=latin1' },
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'a body claiming gzip that is not',
    method: 'PUT',
    path: CONN,
    body: JSON.stringify({ access_token: 'x' }),
    headers: { 'content-encoding': 'gzip' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a __proto__ field',
    method: 'POST',
    path: SESSIONS,
    body: '{"provider":"bonjoro","connection_id":"a","__proto__":{"admin":true}}',
    status: 400,
    code: 'invalid_request',
  },

  // POST /internal/connect-sessions
  {
    name: 'provider missing',
    method: 'POST',
    path: SESSIONS,
    body: { connection_id: 'a' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'provider as an array',
    method: 'POST',
    path: SESSIONS,
    body: { provider: ['bonjoro'], connection_id: 'a' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'provider as an object',
    method: 'POST',
    path: SESSIONS,
    body: { provider: { id: 'bonjoro' }, connection_id: 'a' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'an unknown provider',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'acme', connection_id: 'a' },
    status: 404,
    code: 'provider_not_found',
    detail: /acme/,
  },
  {
    name: 'a known provider that is not enabled',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'jobber', connection_id: 'a' },
    status: 404,
    code: 'provider_not_enabled',
    detail: /JOBBER_CLIENT_ID.*JOBBER_CLIENT_SECRET/,
  },
  {
    name: 'connection_id missing',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro' },
    status: 400,
    code: 'invalid_request',
    detail: /connection_id/,
  },
  {
    name: 'connection_id as an array',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: ['a'] },
    status: 400,
    code: 'invalid_request',
    detail: /connection_id/,
  },
  {
    name: 'connection_id as a number',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: 42 },
    status: 400,
    code: 'invalid_request',
    detail: /connection_id/,
  },
  {
    name: 'connection_id empty',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: '' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'connection_id of 201 characters',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: longId },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'connection_id with a space',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: 'a b' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'connection_id with a slash',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: 'a/b' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'connection_id with a non-ASCII letter',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: 'caf\u00e9' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'connection_id with a newline',
    method: 'POST',
    path: SESSIONS,
    body: { provider: 'bonjoro', connection_id: 'a\nb' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'an unknown field',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, redirect_uri: 'https://evil.example' },
    status: 400,
    code: 'invalid_request',
    detail: /redirect_uri/,
  },
  {
    name: 'scopes as a string',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, scopes: 'read write' },
    status: 400,
    code: 'invalid_request',
    detail: /scopes/,
  },
  {
    name: 'scopes as an object',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, scopes: { read: true } },
    status: 400,
    code: 'invalid_request',
    detail: /scopes/,
  },
  {
    name: 'scopes holding numbers',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, scopes: [1, 2] },
    status: 400,
    code: 'invalid_request',
    detail: /scopes/,
  },
  {
    name: 'scopes holding a space',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, scopes: ['read write'] },
    status: 400,
    code: 'invalid_request',
    detail: /scopes/,
  },
  {
    name: 'return_to as an array',
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, return_to: [`${TEST_RETURN_ORIGIN}/integrations`] },
    status: 400,
    code: 'invalid_request',
    detail: /return_to/,
  },
  ...[
    'https://evil.example.com/integrations',
    `${TEST_RETURN_ORIGIN}/integrations-evil`,
    `${TEST_RETURN_ORIGIN}/other`,
    `${TEST_RETURN_ORIGIN}`,
    'http://app.example.com/integrations',
    'https://app.example.com:8443/integrations',
    'https://app.example.com.evil.com/integrations',
    'https://user@app.example.com/integrations',
    `${TEST_RETURN_ORIGIN}/integrations/..%2f..%2fadmin`,
    `${TEST_RETURN_ORIGIN}\\@evil.com/integrations`,
    '//evil.com/integrations',
    '/integrations',
    'javascript:alert(1)//https://app.example.com/integrations',
  ].map((returnTo): BadInput => ({
    name: `return_to ${returnTo} outside ALLOWED_RETURN_URLS`,
    method: 'POST',
    path: SESSIONS,
    body: { ...okSession, return_to: returnTo },
    status: 400,
    code: 'invalid_request',
    detail: /return_to/,
  })),

  // Path segments
  {
    name: 'an unknown provider in the path',
    path: '/internal/connections/acme/existing/token',
    status: 404,
    code: 'provider_not_found',
  },
  {
    name: 'an upper-case provider id in the path',
    path: '/internal/connections/BONJORO/existing/token',
    status: 404,
    code: 'provider_not_found',
  },
  {
    name: 'markup as provider id in the path',
    path: '/internal/connections/%3Cscript%3E/existing',
    status: 404,
    code: 'provider_not_found',
    detail: /^[^<>]*$/,
  },
  {
    name: 'a disabled provider in the path',
    path: '/internal/connections/jobber/existing/token',
    status: 404,
    code: 'provider_not_enabled',
    detail: /JOBBER_CLIENT_ID.*JOBBER_CLIENT_SECRET/,
  },
  {
    name: 'a connection_id of 201 characters in the path',
    path: `/internal/connections/bonjoro/${longId}/token`,
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a connection_id with a space in the path',
    path: '/internal/connections/bonjoro/a%20b/token',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a connection_id with an encoded slash in the path',
    path: '/internal/connections/bonjoro/a%2Fb',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a connection_id with a dollar sign in the path',
    path: '/internal/connections/bonjoro/a$b',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a connection_id with broken percent-encoding',
    path: '/internal/connections/bonjoro/a%E0%A4%A/token',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a bad connection_id on DELETE',
    method: 'DELETE',
    path: '/internal/connections/bonjoro/a%20b',
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'a bad connection_id on PUT',
    method: 'PUT',
    path: '/internal/connections/bonjoro/a%20b',
    body: { access_token: 'x' },
    status: 400,
    code: 'invalid_request',
  },

  // GET …/token query
  ...['-1', '86401', '1.5', 'abc', '', '1e3', '0x10', ' 5', '99999999999999999999999'].map((v): BadInput => ({
    name: `min_validity=${JSON.stringify(v)}`,
    path: `${TOKEN}?min_validity=${encodeURIComponent(v)}`,
    status: 400,
    code: 'invalid_request',
    detail: /min_validity/,
  })),
  ...['yes', '1', 'TRUE', ''].map((v): BadInput => ({
    name: `force_refresh=${JSON.stringify(v)}`,
    path: `${TOKEN}?force_refresh=${v}`,
    status: 400,
    code: 'invalid_request',
    detail: /force_refresh/,
  })),
  {
    name: 'min_validity given twice',
    path: `${TOKEN}?min_validity=1&min_validity=2`,
    status: 400,
    code: 'invalid_request',
    detail: /min_validity/,
  },
  {
    name: 'force_refresh given twice',
    path: `${TOKEN}?force_refresh=true&force_refresh=true`,
    status: 400,
    code: 'invalid_request',
    detail: /force_refresh/,
  },

  // GET /internal/connections query
  {
    name: 'limit given twice',
    path: '/internal/connections?limit=1&limit=2',
    status: 400,
    code: 'invalid_request',
    detail: /limit/,
  },
  {
    name: 'limit=0',
    path: '/internal/connections?limit=0',
    status: 400,
    code: 'invalid_request',
    detail: /limit/,
  },
  {
    name: 'limit=1001',
    path: '/internal/connections?limit=1001',
    status: 400,
    code: 'invalid_request',
    detail: /limit/,
  },
  {
    name: 'limit=ten',
    path: '/internal/connections?limit=ten',
    status: 400,
    code: 'invalid_request',
    detail: /limit/,
  },
  {
    name: 'provider given twice',
    path: '/internal/connections?provider=bonjoro&provider=bexio',
    status: 400,
    code: 'invalid_request',
    detail: /provider/,
  },
  {
    name: 'an unknown provider filter',
    path: '/internal/connections?provider=acme',
    status: 404,
    code: 'provider_not_found',
  },
  {
    name: 'a cursor of bad characters',
    path: '/internal/connections?cursor=%21%21%21',
    status: 400,
    code: 'invalid_request',
    detail: /cursor/,
  },
  {
    name: 'a cursor this API never gave',
    path: `/internal/connections?cursor=${Buffer.from('no colon here at all').toString('base64url')}`,
    status: 400,
    code: 'invalid_request',
    detail: /cursor/,
  },

  // PUT import
  {
    name: 'an import without access_token',
    method: 'PUT',
    path: CONN,
    body: { refresh_token: 'r' },
    status: 400,
    code: 'invalid_request',
    detail: /access_token/,
  },
  {
    name: 'access_token as an array',
    method: 'PUT',
    path: CONN,
    body: { access_token: ['x'] },
    status: 400,
    code: 'invalid_request',
    detail: /access_token/,
  },
  {
    name: 'access_token as a number',
    method: 'PUT',
    path: CONN,
    body: { access_token: 12345 },
    status: 400,
    code: 'invalid_request',
    detail: /access_token/,
  },
  {
    name: 'access_token empty',
    method: 'PUT',
    path: CONN,
    body: { access_token: '' },
    status: 400,
    code: 'invalid_request',
    detail: /access_token/,
  },
  {
    name: 'access_token of 40 kB',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x'.repeat(40_000) },
    status: 400,
    code: 'invalid_request',
    detail: /access_token/,
  },
  {
    name: 'refresh_token as an object',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', refresh_token: { value: 'r' } },
    status: 400,
    code: 'invalid_request',
    detail: /refresh_token/,
  },
  {
    name: 'token_type as an array',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', token_type: ['Bearer'] },
    status: 400,
    code: 'invalid_request',
    detail: /token_type/,
  },
  {
    name: 'expires_in negative',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_in: -5 },
    status: 400,
    code: 'invalid_request',
    detail: /expires_in/,
  },
  {
    name: 'expires_in as words',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_in: 'an hour' },
    status: 400,
    code: 'invalid_request',
    detail: /expires_in/,
  },
  {
    name: 'expires_in as an array',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_in: [60] },
    status: 400,
    code: 'invalid_request',
    detail: /expires_in/,
  },
  {
    name: 'expires_at not a date',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_at: 'tomorrow' },
    status: 400,
    code: 'invalid_request',
    detail: /expires_at/,
  },
  {
    name: 'expires_at as epoch seconds',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_at: 1893456000 },
    status: 400,
    code: 'invalid_request',
    detail: /expires_at/,
  },
  {
    name: 'expires_at and expires_in both',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', expires_in: 60, expires_at: '2030-01-01T00:00:00Z' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'scopes as a string on import',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', scopes: 'read' },
    status: 400,
    code: 'invalid_request',
    detail: /scopes/,
  },
  {
    name: 'an unknown field on import',
    method: 'PUT',
    path: CONN,
    body: { access_token: 'x', id_token: 'y' },
    status: 400,
    code: 'invalid_request',
    detail: /id_token/,
  },
  {
    name: 'an api_key on an oauth2 provider',
    method: 'PUT',
    path: CONN,
    body: { api_key: 'k' },
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'an import body that is an array',
    method: 'PUT',
    path: CONN,
    body: [{ access_token: 'x' }],
    status: 400,
    code: 'invalid_request',
  },

  // Routes
  { name: 'an unknown internal route', path: '/internal/nothing-here', status: 404, code: 'not_found' },
];

describe('bad input on the internal API answers 4xx problem+json, never 500', () => {
  const t = useBrokerOnRedis(
    (fakeUrl) => ({
      LOG_LEVEL: 'warn',
      ...providerEnv('bonjoro', fakeUrl),
      ...providerEnv('bexio', fakeUrl),
    }),
    {},
    { jobber: false },
  );
  let existingToken: string;

  beforeAll(async () => {
    const put = await t.broker.api(CONN, {
      method: 'PUT',
      body: { access_token: 'existing-access', refresh_token: 'existing-refresh', expires_in: 3600 },
    });
    expect(put.status).toBe(201);
    existingToken = 'existing-access';
  });

  it.each(cases.map((c) => [c.name, c] as const))('refuses %s', async (_name, c) => {
    const res = await t.broker.api(c.path, { method: c.method ?? 'GET', body: c.body, headers: c.headers });
    expect(res.body?.code).toBe(c.code);
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      type: expect.any(String),
      title: expect.any(String),
      status: c.status,
      detail: expect.any(String),
    });
    if (c.detail) expect(res.body.detail).toMatch(c.detail);
    const text = JSON.stringify(res.body);
    expect(res.body).not.toHaveProperty('stack');
    expect(text).not.toMatch(/\bat .+:\d+:\d+|node_modules|\/src\/|\.ts\b/);
  });

  it('changed nothing: the existing connection still answers its token, and no connect link or connection was made', async () => {
    const token = await t.broker.api(`${TOKEN}?min_validity=0`);
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(existingToken);
    const listed = await t.broker.api('/internal/connections?limit=1000');
    expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([
      'existing',
    ]);
    const client = t.redis.client();
    try {
      expect(await client.keys('ob:connect:*')).toEqual([]);
    } finally {
      client.disconnect();
    }
  });

  it('accepts the allowed return_to and the well-formed queries the table bends (the controls)', async () => {
    const ok = await t.broker.api(SESSIONS, {
      method: 'POST',
      body: { ...okSession, return_to: `${TEST_RETURN_ORIGIN}/integrations/sub?x=1`, scopes: ['read'] },
    });
    expect(ok.status).toBe(201);
    for (const path of [
      `${TOKEN}?min_validity=0`,
      `${TOKEN}?min_validity=60&force_refresh=false`,
      '/internal/connections?limit=1000',
      '/internal/connections?limit=1&provider=bonjoro',
    ]) {
      expect((await t.broker.api(path)).status).toBe(200);
    }
    expect((await t.broker.api('/internal/connections?provider=jobber')).status).toBe(200);
  });

  it('logged no failure of its own (no 5xx) for any of them', () => {
    const failures = t.broker.logs.filter((line) => /"level":(50|60)/.test(line));
    expect(failures).toEqual([]);
  });
});
