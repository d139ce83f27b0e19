import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { createProviderHttp, ProviderNetworkError } from '../../../src/oauth/provider-http';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A loopback server that records what reached it and answers as the test says. */
async function server(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: Seen[] = [];
  const srv: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      srv.closeAllConnections();
      srv.close(() => resolve());
    });
  return { url, seen, close };
}

const http = createProviderHttp({ timeoutMs: 1000 });
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});
async function started(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const s = await server(answer);
  closers.push(s.close);
  return s;
}

describe('createProviderHttp: the one door to providers', () => {
  it('answers the raw status, content type and body text, whatever the status', async () => {
    const provider = await started((_req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end('{"error":"invalid_grant"}');
    });
    const answer = await http({ method: 'POST', url: `${provider.url}/token`, body: 'a=1' });
    expect(answer).toEqual({
      status: 400,
      contentType: 'application/json',
      body: '{"error":"invalid_grant"}',
    });
  });

  it('sends the method, the caller headers, the body and its own User-Agent', async () => {
    const provider = await started((_req, res) => res.end('ok'));
    await http({
      method: 'POST',
      url: `${provider.url}/token?x=1`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: 'grant_type=refresh_token',
    });
    expect(provider.seen).toHaveLength(1);
    expect(provider.seen[0]).toMatchObject({
      method: 'POST',
      url: '/token?x=1',
      body: 'grant_type=refresh_token',
    });
    expect(provider.seen[0]!.headers['user-agent']).toBe('oauth-broker');
    expect(provider.seen[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  // A token endpoint that redirects must not get the client secret, a code or a refresh token
  // carried to another host (a 307/308 resends the body): the redirect is answered, not followed.
  it.each([307, 308, 302, 301])(
    'does not follow a %i from a token endpoint: the other host hears nothing',
    async (status) => {
      const elsewhere = await started((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"access_token":"from-elsewhere","token_type":"Bearer"}');
      });
      const provider = await started((_req, res) => {
        res.writeHead(status, { Location: `${elsewhere.url}/steal` });
        res.end();
      });
      const answer = await http({
        method: 'POST',
        url: `${provider.url}/token`,
        headers: { Authorization: 'Basic Y2xpZW50OnNlY3JldA==' },
        body: 'grant_type=authorization_code&code=the-code',
      });
      expect(answer.status).toBe(status);
      expect(answer.body).not.toContain('from-elsewhere');
      expect(provider.seen).toHaveLength(1);
      expect(elsewhere.seen).toHaveLength(0);
    },
  );

  it('does not follow a redirect on a GET (an API-key check) either', async () => {
    const elsewhere = await started((_req, res) => res.end('accepted elsewhere'));
    const provider = await started((_req, res) => {
      res.writeHead(302, { Location: `${elsewhere.url}/me` });
      res.end();
    });
    const answer = await http({ method: 'GET', url: `${provider.url}/me`, headers: { 'X-API-KEY': 'k' } });
    expect(answer.status).toBe(302);
    expect(elsewhere.seen).toHaveLength(0);
  });

  it('gives up after its timeout with a ProviderNetworkError that says so, carrying no request data', async () => {
    const provider = await started(() => undefined); // never answers
    const short = createProviderHttp({ timeoutMs: 150 });
    const error = await short({
      method: 'POST',
      url: `${provider.url}/token`,
      body: 'refresh_token=rt-secret',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderNetworkError);
    expect(error).toMatchObject({ timedOut: true, notSent: false, message: 'provider timed out' });
    expect(JSON.stringify(error)).not.toContain('rt-secret');
    expect(Object.keys(error as object)).not.toEqual(
      expect.arrayContaining(['config', 'request', 'response']),
    );
  });

  it('says a refused connection was never sent, naming the code and not the URL', async () => {
    const gone = await server((_req, res) => res.end());
    await gone.close();
    const error = await http({ method: 'POST', url: `${gone.url}/token`, body: 'code=c-secret' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderNetworkError);
    expect(error).toMatchObject({
      timedOut: false,
      notSent: true,
      message: 'provider unreachable (ECONNREFUSED)',
    });
    expect((error as Error).message).not.toContain(gone.url);
  });

  it('refuses an answer over 1 MiB rather than reading it whole', async () => {
    const provider = await started((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('x'.repeat(1024 * 1024 + 10));
    });
    const error = await http({ method: 'GET', url: provider.url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderNetworkError);
    expect(error).toMatchObject({ timedOut: false, notSent: false });
  });
});
