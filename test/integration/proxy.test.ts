import { request as httpRequest } from 'node:http';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { FakeUpstream } from '../helpers/fake-upstream';
import { freePort } from '../helpers/free-port';
import { useProvidersFiles } from '../helpers/providers-file';
import { rawRequest } from '../helpers/raw-request';

/**
 * The proxy (docs/proxy.md): `/internal/proxy/:provider/:connection_id/<path>` sends the request
 * to the provider's api_base_url with the connection's credential, and answers what came back.
 * A fake API records what reached it.
 */
let upstream: FakeUpstream;
let closedPort: number;
beforeAll(async () => {
  upstream = await FakeUpstream.start();
  closedPort = await freePort();
});
const files = useProvidersFiles('proxy-it');
const env = useBrokerOnRedis(() => ({
  JOBBER_API_BASE_URL: `${upstream.url}/api`,
  PROCESS_STREET_AUTH_MODE: 'api_key',
  PROCESS_STREET_API_BASE_URL: `${upstream.url}/ps/v1.1/`,
  PROVIDERS_FILE: files.write([
    { id: 'no-api', authorization_url: 'http://127.0.0.1:9/a', token_url: 'http://127.0.0.1:9/t' },
    { id: 'refused-api', extends: 'no-api', api_base_url: `http://127.0.0.1:${closedPort}/v1` },
    { id: 'slow-api', extends: 'no-api' },
  ]),
  NO_API_CLIENT_ID: 'x',
  NO_API_CLIENT_SECRET: 'y',
  REFUSED_API_CLIENT_ID: 'x',
  REFUSED_API_CLIENT_SECRET: 'y',
  SLOW_API_CLIENT_ID: 'x',
  SLOW_API_CLIENT_SECRET: 'y',
  SLOW_API_API_BASE_URL: `${upstream.url}/slow`,
  PROXY_TIMEOUT: '0.5',
  LOG_LEVEL: 'info',
}));
afterAll(async () => {
  await upstream.close();
});

const KEY = `Bearer ${TEST_INTERNAL_KEY}`;

async function importToken(provider: string, id: string, body: Record<string, unknown>): Promise<void> {
  const put = await env.broker.api(`/internal/connections/${provider}/${id}`, { method: 'PUT', body });
  expect([200, 201]).toContain(put.status);
}

/** A raw request, so the target goes out byte for byte (fetch would normalise `..` and `\`). */
const raw = (
  method: string,
  target: string,
  headers: Record<string, string | string[]> = {},
  body?: Buffer | string,
) => rawRequest(env.broker.internalUrl, method, target, headers, body);

beforeAll(async () => {
  await importToken('jobber', 'acct-1', {
    access_token: 'at-one',
    refresh_token: 'rt-one',
    expires_in: 3600,
  });
  await importToken('process-street', 'ps-1', { api_key: 'ps-key-123' });
  await importToken('no-api', 'n-1', { access_token: 'at-n', expires_in: 3600 });
  await importToken('refused-api', 'r-1', { access_token: 'at-r', expires_in: 3600 });
  await importToken('slow-api', 's-1', { access_token: 'at-s', expires_in: 3600 });
});

describe('proxy: methods and bodies', () => {
  it.each(['GET', 'DELETE', 'HEAD'])(
    'forwards a %s with the credential, api_headers and the query byte for byte',
    async (method) => {
      const before = upstream.requests.length;
      const query = 'a=1&b=%2F%20x&a=2&empty=&flag&sp=a+b';
      const res = await raw(method, `/internal/proxy/jobber/acct-1/graphql/items?${query}`, {
        'x-request-id': 'req-123',
      });
      expect(res.status).toBe(200);
      const seen = upstream.requests[before]!;
      expect(seen.method).toBe(method);
      expect(seen.url).toBe(`/api/graphql/items?${query}`);
      expect(seen.headers.authorization).toBe('Bearer at-one');
      expect(seen.headers['x-jobber-graphql-version']).toBe('2025-04-16');
      expect(seen.headers['x-request-id']).toBe('req-123');
      expect(res.headers['x-request-id']).toBe('req-123');
    },
  );

  const bodies: Array<[string, string, Buffer]> = [
    ['JSON', 'application/json', Buffer.from(JSON.stringify({ query: '{ account { id } }', n: 1 }))],
    ['form', 'application/x-www-form-urlencoded', Buffer.from('a=1&b=two+words&c=%26')],
    [
      'multipart',
      'multipart/form-data; boundary=XyZ',
      Buffer.from(
        '--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\u0000\u0001\u0002\r\n--XyZ--\r\n',
        'latin1',
      ),
    ],
    [
      'binary',
      'application/octet-stream',
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)),
    ],
  ];
  for (const method of ['POST', 'PUT', 'PATCH']) {
    it.each(bodies)(`${method}s a %s body unchanged`, async (_kind, type, body) => {
      const before = upstream.requests.length;
      const res = await raw(method, '/internal/proxy/jobber/acct-1/graphql', { 'content-type': type }, body);
      expect(res.status).toBe(200);
      const seen = upstream.requests[before]!;
      expect(seen.method).toBe(method);
      expect(seen.headers['content-type']).toBe(type);
      expect(seen.body.equals(body)).toBe(true);
      expect(seen.headers['content-length']).toBe(String(body.length));
    });
  }

  it('sends a chunked body of unknown length through whole', async () => {
    const before = upstream.requests.length;
    const url = new URL(env.broker.internalUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/internal/proxy/jobber/acct-1/upload',
          headers: { authorization: KEY },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('part one,');
      req.end('part two');
    });
    expect(status).toBe(200);
    expect(upstream.requests[before]!.body.toString()).toBe('part one,part two');
  });
});

describe('proxy: header hygiene', () => {
  it('never forwards the broker key, cookies, Host, Broker-* or hop-by-hop headers', async () => {
    const before = upstream.requests.length;
    const res = await raw('GET', '/internal/proxy/jobber/acct-1/graphql', {
      cookie: 'sid=secret-cookie',
      'broker-option': 'x',
      'Broker-Min-Validity': '60',
      connection: 'keep-alive, x-private-hop',
      'x-private-hop': 'drop me',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic abc',
      te: 'trailers',
      upgrade: 'h2c',
      'x-custom': 'kept',
      accept: 'application/json',
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests[before]!;
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const dropped of [
      'cookie',
      'broker-option',
      'broker-min-validity',
      'x-private-hop',
      'keep-alive',
      'proxy-authorization',
      'te',
      'upgrade',
    ])
      expect(names).not.toContain(dropped);
    expect(seen.rawHeaders.join('\n')).not.toContain(TEST_INTERNAL_KEY);
    expect(seen.headers.authorization).toBe('Bearer at-one');
    expect(seen.headers.host).toBe(new URL(upstream.url).host);
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers.accept).toBe('application/json');
  });

  it('drops Set-Cookie, hop-by-hop headers and any Broker-* header from the answer, and keeps the rest', async () => {
    upstream.on((_req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('Connection', 'keep-alive, X-Hop');
      res.setHeader('X-Hop', 'private');
      res.setHeader('Broker-Error', 'connection_not_found');
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('X-RateLimit-Remaining', '41');
      res.setHeader('Link', ['<a>; rel="next"', '<b>; rel="prev"']);
      res.end('ok');
    });
    try {
      const res = await raw('GET', '/internal/proxy/jobber/acct-1/x');
      expect(res.status).toBe(200);
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['x-hop']).toBeUndefined();
      expect(res.headers['broker-error']).toBeUndefined();
      expect(res.headers['x-ratelimit-remaining']).toBe('41');
      expect(res.headers.link).toBe('<a>; rel="next", <b>; rel="prev"');
      expect(res.body).toBe('ok');
    } finally {
      upstream.on(undefined);
    }
  });
});

describe('proxy: the path stays under api_base_url', () => {
  const escapes = [
    ['..', '../admin'],
    ['a .. segment inside', 'graphql/../../admin'],
    ['a . segment', './graphql'],
    ['%2e%2e', '%2e%2e/admin'],
    ['%2E%2e mixed case', 'x/%2E%2e/admin'],
    ['.%2e', '.%2e/admin'],
    ['double-encoded %252e%252e', '%252e%252e/admin'],
    ['an encoded /', 'a%2fb'],
    ['an encoded \\', 'a%5Cb'],
    ['a \\', 'a\\..\\b'],
    ['//host', '/evil.example/x'],
    ['an absolute URL', 'http://evil.example/x'],
    ['an absolute URL, encoded colon', 'http%3A%2F%2Fevil.example'],
    ['@ in the first segment', 'user@evil.example/x'],
    ['an encoded @ in the first segment', 'user%40evil.example'],
    ['a : in the first segment', 'evil.example:443/x'],
    ['malformed percent-encoding', 'a%zz'],
  ];
  it.each(escapes)(
    'refuses %s with 400 invalid_request before any upstream connection',
    async (_name, rest) => {
      const before = upstream.requests.length;
      const res = await raw('GET', `/internal/proxy/jobber/acct-1/${rest}`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).code).toBe('invalid_request');
      expect(res.headers['broker-error']).toBe('invalid_request');
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(upstream.requests.length).toBe(before);
    },
  );

  it.each([
    ['a plain path', 'graphql', '/api/graphql'],
    ['@ and : after the first segment', 'users/a@b:c', '/api/users/a@b:c'],
    ['dots inside a segment', 'files/v1.2..3', '/api/files/v1.2..3'],
    ['an encoded space', 'a%20b', '/api/a%20b'],
    ['nothing after the slash', '', '/api/'],
  ])('forwards %s', async (_name, rest, expected) => {
    const before = upstream.requests.length;
    const res = await raw('GET', `/internal/proxy/jobber/acct-1/${rest}`);
    expect(res.status).toBe(200);
    expect(upstream.requests[before]!.url).toBe(expected);
  });
});

describe('proxy: through the Express app as well', () => {
  it('answers another spelling of the route (left to the app by the fast path) the same way', async () => {
    const before = upstream.requests.length;
    const res = await raw(
      'POST',
      '/Internal/Proxy/jobber/acct-1/graphql?x=1',
      { 'content-type': 'text/plain' },
      'body',
    );
    expect(res.status).toBe(200);
    const seen = upstream.requests[before]!;
    expect(seen.url).toBe('/api/graphql?x=1');
    expect(seen.headers.authorization).toBe('Bearer at-one');
    expect(seen.body.toString()).toBe('body');
    const refused = await raw('GET', '/Internal/Proxy/jobber/acct-1/%2e%2e/x');
    expect([refused.status, refused.headers['broker-error']]).toEqual([400, 'invalid_request']);
    expect(upstream.requests.length).toBe(before + 1);
  });
});

describe('proxy: the base URL itself', () => {
  it('sends /internal/proxy/:p/:c?query (no slash after the id) to api_base_url itself', async () => {
    const before = upstream.requests.length;
    const res = await raw('GET', '/internal/proxy/jobber/acct-1?q=1');
    expect(res.status).toBe(200);
    expect(upstream.requests[before]!.url).toBe('/api?q=1');
  });
});

describe('proxy: answers', () => {
  it('passes the upstream answer through unchanged: 429 with Retry-After, body, reason', async () => {
    upstream.on((_req, res) => {
      res.writeHead(429, 'Slow Down', { 'Retry-After': '7', 'Content-Type': 'application/json' });
      res.end('{"error":"rate_limited_upstream"}');
    });
    try {
      const res = await raw('GET', '/internal/proxy/jobber/acct-1/graphql');
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.headers['broker-error']).toBeUndefined();
      expect(res.body).toBe('{"error":"rate_limited_upstream"}');
    } finally {
      upstream.on(undefined);
    }
  });

  it('passes a small chunked answer through whole, status and body', async () => {
    upstream.on((_req, res) => {
      res.writeHead(201, { 'Content-Type': 'text/plain' });
      res.write('first part, ');
      res.end('second part');
    });
    try {
      const res = await raw('GET', '/internal/proxy/jobber/acct-1/graphql');
      expect(res.status).toBe(201);
      expect(res.headers['content-type']).toBe('text/plain');
      expect(res.body).toBe('first part, second part');
    } finally {
      upstream.on(undefined);
    }
  });

  it('sends one request after another over one kept-alive upstream connection', async () => {
    const before = upstream.requests.length;
    for (let i = 0; i < 4; i++) {
      const res = await raw('GET', `/internal/proxy/jobber/acct-1/graphql?i=${i}`);
      expect(res.status).toBe(200);
    }
    const seen = upstream.requests.slice(before);
    expect(seen.map((r) => r.url)).toEqual([0, 1, 2, 3].map((i) => `/api/graphql?i=${i}`));
    expect(new Set(seen.map((r) => r.remotePort)).size).toBe(1);
  });

  it('answers a redirect as it is and never follows it', async () => {
    upstream.on((_req, res) => {
      res.writeHead(302, { Location: 'http://127.0.0.1:9/elsewhere' });
      res.end();
    });
    try {
      const before = upstream.requests.length;
      const res = await raw('GET', '/internal/proxy/jobber/acct-1/moved');
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe('http://127.0.0.1:9/elsewhere');
      expect(upstream.requests.length).toBe(before + 1);
    } finally {
      upstream.on(undefined);
    }
  });

  it('sends an api_key connection as the api_key block says (X-API-KEY, no prefix)', async () => {
    const before = upstream.requests.length;
    const res = await raw('GET', '/internal/proxy/process-street/ps-1/workflows?limit=5', {
      'x-api-key': 'callers-own',
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests[before]!;
    expect(seen.url).toBe('/ps/v1.1/workflows?limit=5');
    expect(seen.headers['x-api-key']).toBe('ps-key-123');
    expect(seen.headers.authorization).toBeUndefined();
  });

  it('normalises a lower-case bearer token type to Bearer', async () => {
    await importToken('jobber', 'lower', {
      access_token: 'at-lower',
      token_type: 'bearer',
      expires_in: 3600,
    });
    const before = upstream.requests.length;
    expect((await raw('GET', '/internal/proxy/jobber/lower/graphql')).status).toBe(200);
    expect(upstream.requests[before]!.headers.authorization).toBe('Bearer at-lower');
  });

  it.each([
    ['an unknown provider', '/internal/proxy/nope/acct-1/x', 404, 'provider_not_found'],
    ['an unknown connection', '/internal/proxy/jobber/nobody/x', 404, 'connection_not_found'],
    ['a provider without api_base_url', '/internal/proxy/no-api/n-1/x', 404, 'proxy_not_configured'],
    ['a bad connection id', '/internal/proxy/jobber/bad%20id/x', 400, 'invalid_request'],
  ])('refuses %s with problem+json and Broker-Error', async (_name, target, status, code) => {
    const before = upstream.requests.length;
    const res = await raw('GET', target);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).code).toBe(code);
    expect(res.headers['broker-error']).toBe(code);
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses a caller without the internal key (401) and forwards nothing', async () => {
    const before = upstream.requests.length;
    const res = await raw('GET', '/internal/proxy/jobber/acct-1/graphql', {
      authorization: 'Bearer wrong-key-wrong-key-wrong-key-00',
    });
    expect(res.status).toBe(401);
    expect(res.headers['broker-error']).toBe('unauthorized');
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 502 provider_unavailable when the upstream refuses the connection', async () => {
    const res = await raw('GET', '/internal/proxy/refused-api/r-1/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'provider_unavailable', retryable: true });
    expect(res.headers['broker-error']).toBe('provider_unavailable');
  });

  it('answers 504 provider_unavailable when the response head takes longer than PROXY_TIMEOUT, and other requests go on meanwhile', async () => {
    upstream.on((req, res) => {
      if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('late'), 3000);
      res.end('quick');
    });
    try {
      const slow = raw('GET', '/internal/proxy/slow-api/s-1/hang');
      const quick = await raw('GET', '/internal/proxy/jobber/acct-1/fast');
      expect(quick.body).toBe('quick');
      const res = await slow;
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body).code).toBe('provider_unavailable');
      expect(res.headers['broker-error']).toBe('provider_unavailable');
    } finally {
      upstream.on(undefined);
    }
  });
});

describe('proxy: observability', () => {
  it('logs request id, provider, connection, method, path and durations, never the query, token or body', async () => {
    const res = await raw(
      'POST',
      '/internal/proxy/jobber/acct-1/graphql/log-me?secret_param=hunter2',
      { 'x-request-id': 'log-line-1', 'content-type': 'application/json' },
      '{"password":"body-secret"}',
    );
    expect(res.status).toBe(200);
    const lines = env.broker.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.msg === 'proxied' && l.req_id === 'log-line-1');
    expect(line).toMatchObject({
      provider: 'jobber',
      connection_id: 'acct-1',
      method: 'POST',
      path: 'graphql/log-me',
      status: 200,
      upstream_status: 200,
    });
    expect(typeof line!.duration_ms).toBe('number');
    expect(typeof line!.upstream_ms).toBe('number');
    expect(typeof line!.broker_ms).toBe('number');
    const all = env.broker.logs.join('\n');
    for (const secret of ['hunter2', 'body-secret', 'at-one', 'ps-key-123', TEST_INTERNAL_KEY])
      expect(all).not.toContain(secret);
  });

  it('counts proxied requests by provider, method and upstream status class, with upstream and broker durations apart', async () => {
    const metrics = await (await fetch(`${env.broker.internalUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /oauth_broker_proxy_requests_total\{provider="jobber",method="GET",status_class="2xx"\} \d+/,
    );
    expect(metrics).toMatch(
      /oauth_broker_proxy_requests_total\{provider="jobber",method="GET",status_class="4xx"\} \d+/,
    );
    expect(metrics).toMatch(
      /oauth_broker_proxy_requests_total\{provider="refused-api",method="GET",status_class="broker"\} 1/,
    );
    expect(metrics).toMatch(
      /oauth_broker_proxy_duration_seconds_count\{provider="jobber",phase="upstream"\} \d+/,
    );
    expect(metrics).toMatch(
      /oauth_broker_proxy_duration_seconds_count\{provider="jobber",phase="broker"\} \d+/,
    );
    expect(metrics).not.toContain('hunter2');
    expect(metrics).not.toContain('acct-1');
  });
});
