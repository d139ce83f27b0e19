import { Readable } from 'node:stream';
import { BrokerClient, BrokerProblemError } from '@oauth-broker/client';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { FakeUpstream } from '../helpers/fake-upstream';

/** BrokerClient.proxy() against a real broker and a fake provider API. */
let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await FakeUpstream.start();
});
const t = useBrokerOnRedis(() => ({ JOBBER_API_BASE_URL: `${upstream.url}/api` }));
afterAll(() => upstream.close());
afterEach(() => upstream.on(undefined));

function client(): BrokerClient {
  return new BrokerClient({ baseUrl: t.broker.internalUrl, apiKey: TEST_INTERNAL_KEY });
}

beforeAll(async () => {
  const put = await t.broker.api('/internal/connections/jobber/typed', {
    method: 'PUT',
    body: { access_token: 'at-typed', refresh_token: 'rt-typed', expires_in: 3600 },
  });
  expect(put.status).toBe(201);
});

describe('typed client: proxy()', () => {
  it('sends method, path, query, headers and a JSON body, and answers a fetch Response', async () => {
    const before = upstream.requests.length;
    const response = await client().proxy('jobber', 'typed', {
      method: 'POST',
      path: '/graphql',
      query: { a: '1', list: ['x', 'y'], skipped: undefined },
      headers: { 'content-type': 'application/json', 'x-custom': 'yes' },
      body: JSON.stringify({ query: '{ account { id } }' }),
    });
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ method: 'POST', url: '/api/graphql?a=1&list=x&list=y' });
    const seen = upstream.requests[before]!;
    expect(seen.headers.authorization).toBe('Bearer at-typed');
    expect(seen.headers['x-custom']).toBe('yes');
    expect(seen.body.toString()).toBe('{"query":"{ account { id } }"}');
  });

  it('answers the provider own errors as a Response, untouched (no throw)', async () => {
    upstream.on((_req, res) => {
      res.writeHead(429, { 'Retry-After': '3' });
      res.end('slow down');
    });
    const response = await client().proxy('jobber', 'typed', { path: 'graphql' });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(await response.text()).toBe('slow down');
  });

  it('streams a ReadableStream upload and a streamed answer', async () => {
    upstream.on((_req, res, record) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(record.body.subarray(0, 10));
      setTimeout(() => res.end(record.body.subarray(10)), 20);
    });
    const payload = Buffer.alloc(256 * 1024, 0x33);
    const body = Readable.toWeb(
      Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]),
    ) as ReadableStream;
    const response = await client().proxy('jobber', 'typed', { method: 'PUT', path: 'files/a.bin', body });
    expect(response.status).toBe(200);
    const received = Buffer.from(await response.arrayBuffer());
    expect(received.equals(payload)).toBe(true);
  });

  it.each([
    ['an unknown connection', 'nobody', 'graphql', 'connection_not_found', 404],
    ['a path leaving api_base_url', 'typed', '%2e%2e/admin', 'invalid_request', 400],
  ])('throws BrokerProblemError for %s', async (_name, connection, path, code, status) => {
    const error = await client()
      .proxy('jobber', connection, { path })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerProblemError);
    expect(error).toMatchObject({ code, status });
  });
});
