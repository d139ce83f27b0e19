import { request as httpRequest } from 'node:http';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { FakeUpstream } from '../helpers/fake-upstream';

/**
 * Bodies stream both ways: the caller reads the first bytes of an answer before the upstream has
 * sent its last, and the upstream reads the first bytes of an upload before the caller has sent
 * its last. A proxy that buffered either body would never let these tests finish.
 */
let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await FakeUpstream.start();
});
const env = useBrokerOnRedis(() => ({ JOBBER_API_BASE_URL: `${upstream.url}/api` }));
afterAll(() => upstream.close());

beforeAll(async () => {
  const put = await env.broker.api('/internal/connections/jobber/stream', {
    method: 'PUT',
    body: { access_token: 'at-stream', refresh_token: 'rt-stream', expires_in: 3600 },
  });
  expect(put.status).toBe(201);
});
afterEach(() => {
  upstream.onHead = undefined;
  upstream.on(undefined);
});

function target(path: string): { host: string; port: string; path: string; headers: Record<string, string> } {
  const url = new URL(env.broker.internalUrl);
  return {
    host: url.hostname,
    port: url.port,
    path,
    headers: { authorization: `Bearer ${TEST_INTERNAL_KEY}` },
  };
}

it('hands the first bytes of a chunked answer to the caller before the upstream sends its last', async () => {
  let sendLast: (() => void) | undefined;
  upstream.on((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('first-part;');
    sendLast = () => res.end('last-part');
  });
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ ...target('/internal/proxy/jobber/stream/events'), method: 'GET' }, (res) => {
      let received = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        received += chunk;
        // Only once the caller holds the first part does the upstream send the rest.
        if (received.startsWith('first-part;') && sendLast) {
          const last = sendLast;
          sendLast = undefined;
          last();
        }
      });
      res.on('end', () => resolve(received));
    });
    req.on('error', reject);
    req.end();
  });
  expect(text).toBe('first-part;last-part');
});

it('streams an upload on: the upstream reads its first bytes before the caller sends its last', async () => {
  let firstBytesArrived: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (firstBytesArrived = resolve));
  let total = 0;
  upstream.onHead = (req, res) => {
    req.on('data', (chunk: Buffer) => {
      if (total === 0) firstBytesArrived();
      total += chunk.length;
    });
    req.on('end', () => res.end(JSON.stringify({ total })));
  };
  const part = Buffer.alloc(2 * 1024 * 1024, 0x62);
  const answer = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(
      {
        ...target('/internal/proxy/jobber/stream/upload'),
        method: 'POST',
        headers: { ...target('').headers, 'content-length': String(part.length * 2) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.write(part);
    // The second half goes only once the upstream has seen the first.
    void arrived.then(() => req.end(part));
  });
  expect(JSON.parse(answer)).toEqual({ total: part.length * 2 });
});

it('stops the upstream request when the caller goes away mid-answer', async () => {
  let upstreamClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  upstream.on((_req, res) => {
    res.writeHead(200);
    res.write('x'.repeat(1024));
    res.on('close', () => upstreamClosed());
  });
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ ...target('/internal/proxy/jobber/stream/forever'), method: 'GET' }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.on('timeout', reject);
    req.end();
  });
  await closed;
});

it('stops the upstream request when the caller goes away mid-upload', async () => {
  let upstreamClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  let received = 0;
  upstream.onHead = (req) => {
    req.on('data', (chunk: Buffer) => (received += chunk.length));
    req.on('close', () => upstreamClosed());
  };
  const req = httpRequest({
    ...target('/internal/proxy/jobber/stream/upload-abandoned'),
    method: 'PUT',
    headers: { ...target('').headers, 'content-length': String(8 * 1024 * 1024) },
  });
  req.on('error', () => undefined);
  req.write(Buffer.alloc(2 * 1024 * 1024, 0x63));
  const started = Date.now();
  while (received === 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
  expect(received).toBeGreaterThan(0);
  req.destroy();
  await closed;
});
