import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  BrokerClient,
  BrokerClientOptions,
  BrokerProblemError,
  OAuthTokenAnswer,
} from '@oauth-broker/client';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { ensureBuilt } from '../helpers/broker-process';

const execFileAsync = promisify(execFile);

describe('typed client (oauth-broker/client) against a real broker', () => {
  const t = useBrokerOnRedis({}, { expiresIn: 3600 });
  /** Every request the client sent, as "METHOD path?query". */
  let sent: string[];

  function client(options: Partial<BrokerClientOptions> = {}): BrokerClient {
    return new BrokerClient({
      baseUrl: t.broker.internalUrl,
      apiKey: TEST_INTERNAL_KEY,
      retryBaseDelayMs: 20,
      retryMaxDelayMs: 100,
      fetch: async (input, init) => {
        const url = new URL(String(input));
        sent.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search}`);
        return fetch(input, init);
      },
      ...options,
    });
  }

  /** A real browser journey through the fake provider's consent, started from the client's link. */
  async function connectWith(c: BrokerClient, connectionId: string): Promise<void> {
    const session = await c.createConnectSession({ provider: 'jobber', connection_id: connectionId });
    const browser = new TestBrowser();
    const auth = await browser.get(session.url);
    expect(auth.status).toBe(302);
    const consent = await browser.get(auth.location!);
    expect(consent.status).toBe(302);
    const callback = await browser.get(consent.location!);
    expect(callback.status).toBe(200);
  }

  beforeEach(() => {
    sent = [];
    t.fake.onToken(undefined);
  });

  it('creates a connect link, and after the browser journey reads the connection metadata', async () => {
    const c = client();
    const session = await c.createConnectSession({ provider: 'jobber', connection_id: 'meta-1' });
    expect(session.url).toMatch(new RegExp(`^${t.broker.publicUrl}/auth/jobber\\?session=`));
    expect(Number.isNaN(Date.parse(session.expires_at))).toBe(false);

    await connectWith(c, 'meta-1');
    const connection = await c.getConnection('jobber', 'meta-1');
    expect(connection).toMatchObject({
      provider: 'jobber',
      connection_id: 'meta-1',
      auth_mode: 'oauth2',
      status: 'active',
    });
    expect(connection).not.toHaveProperty('access_token');
  });

  it('serves a cached token without asking the broker while it stays valid for minValidity', async () => {
    const c = client();
    await connectWith(c, 'cache-1');
    sent = [];
    const first = (await c.getToken('jobber', 'cache-1', { minValidity: 60 })) as OAuthTokenAnswer;
    expect(first.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);
    const second = await c.getToken('jobber', 'cache-1', { minValidity: 600 });
    expect(second).toEqual(first);
    expect(sent).toEqual(['GET /internal/connections/jobber/cache-1/token?min_validity=60']);
  });

  it('asks the broker again once the cached token would not last minValidity', async () => {
    let skew = 0;
    const c = client({ now: () => Date.now() + skew });
    await connectWith(c, 'cache-2');
    await c.getToken('jobber', 'cache-2', { minValidity: 300 });
    skew = 3500_000; // the client's clock says the token has about 100 s left
    await c.getToken('jobber', 'cache-2', { minValidity: 300 });
    expect(sent.filter((s) => s.includes('/cache-2/token'))).toHaveLength(2);
  });

  it('asks for a longer-lived token than cached: the broker refreshes and the new token replaces the cached one', async () => {
    const c = client();
    await connectWith(c, 'cache-3');
    const before = t.fake.refreshRequests.length;
    const first = (await c.getToken('jobber', 'cache-3', { minValidity: 60 })) as OAuthTokenAnswer;
    const longer = (await c.getToken('jobber', 'cache-3', { minValidity: 3700 })) as OAuthTokenAnswer;
    expect(t.fake.refreshRequests.length).toBe(before + 1);
    expect(longer.access_token).not.toBe(first.access_token);
    const again = (await c.getToken('jobber', 'cache-3', { minValidity: 60 })) as OAuthTokenAnswer;
    expect(again.access_token).toBe(longer.access_token);
  });

  it('forceRefresh skips the cache and refreshes at the provider', async () => {
    const c = client();
    await connectWith(c, 'force-1');
    const first = (await c.getToken('jobber', 'force-1')) as OAuthTokenAnswer;
    const before = t.fake.refreshRequests.length;
    const forced = (await c.getToken('jobber', 'force-1', { forceRefresh: true })) as OAuthTokenAnswer;
    expect(t.fake.refreshRequests.length).toBe(before + 1);
    expect(forced.access_token).not.toBe(first.access_token);
    expect(sent).toContain(
      'GET /internal/connections/jobber/force-1/token?min_validity=300&force_refresh=true',
    );
  });

  it('shares one broker request among concurrent calls for the same token', async () => {
    const c = client();
    await connectWith(c, 'flight-1');
    sent = [];
    const answers = await Promise.all(Array.from({ length: 5 }, () => c.getToken('jobber', 'flight-1')));
    expect(new Set(answers.map((a) => (a as OAuthTokenAnswer).access_token)).size).toBe(1);
    expect(sent).toHaveLength(1);
  });

  it('retries a retryable provider_unavailable answer with backoff and returns the token that follows', async () => {
    const c = client({ retries: 2 });
    await connectWith(c, 'retry-1');
    // The broker itself repeats a 5xx refresh once: two failures make it answer 502 retryable.
    t.fake.failNext(2, 503, { error: 'temporarily_unavailable' });
    sent = [];
    const token = (await c.getToken('jobber', 'retry-1', { forceRefresh: true })) as OAuthTokenAnswer;
    expect(token.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);
    expect(sent).toHaveLength(2);
  });

  it('does not retry a provider_unavailable answer marked retryable: false', async () => {
    const c = client({ retries: 3 });
    await connectWith(c, 'noretry-1');
    t.fake.failNext(1, 400, { error: 'invalid_scope' });
    sent = [];
    const error = await c.getToken('jobber', 'noretry-1', { forceRefresh: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerProblemError);
    expect((error as BrokerProblemError).code).toBe('provider_unavailable');
    expect((error as BrokerProblemError).status).toBe(502);
    expect((error as BrokerProblemError).retryable).toBe(false);
    expect(sent).toHaveLength(1);
  });

  it('throws reauthorization_required at once when the provider refuses the refresh token, and drops the cached token', async () => {
    const c = client({ retries: 3 });
    await connectWith(c, 'reauth-1');
    await c.getToken('jobber', 'reauth-1');
    t.fake.onToken((_req, res) => void res.status(400).json({ error: 'invalid_grant' }));
    sent = [];
    const error = await c.getToken('jobber', 'reauth-1', { forceRefresh: true }).catch((e: unknown) => e);
    expect((error as BrokerProblemError).code).toBe('reauthorization_required');
    expect((error as BrokerProblemError).status).toBe(409);
    expect((error as BrokerProblemError).retryable).toBe(false);
    expect(sent).toHaveLength(1);
    // The cache no longer serves the old token: the next call asks the broker, which says the same.
    const next = await c.getToken('jobber', 'reauth-1', { minValidity: 0 }).catch((e: unknown) => e);
    expect((next as BrokerProblemError).code).toBe('reauthorization_required');
    expect(sent).toHaveLength(2);
  });

  it('imports tokens (201 then 200) and lists connections page by page', async () => {
    const c = client();
    const created = await c.importConnection('jobber', 'import-1', {
      access_token: 'imported-1',
      refresh_token: 'r1',
      expires_in: 3600,
    });
    expect(created.created).toBe(true);
    expect(created.connection).toMatchObject({
      provider: 'jobber',
      connection_id: 'import-1',
      status: 'active',
    });
    const replaced = await c.importConnection('jobber', 'import-1', {
      access_token: 'imported-2',
      expires_in: 3600,
    });
    expect(replaced.created).toBe(false);
    expect(((await c.getToken('jobber', 'import-1')) as OAuthTokenAnswer).access_token).toBe('imported-2');
    await c.importConnection('jobber', 'import-2', { access_token: 'imported-3' });

    const firstPage = await c.listConnections({ provider: 'jobber', limit: 1 });
    expect(firstPage.connections).toHaveLength(1);
    expect(typeof firstPage.next_cursor).toBe('string');
    const all: string[] = [];
    for await (const connection of c.iterateConnections({ provider: 'jobber', limit: 2 }))
      all.push(connection.connection_id);
    expect(all).toEqual(expect.arrayContaining(['import-1', 'import-2']));
    expect(new Set(all).size).toBe(all.length);
  });

  it('deletes a connection and forgets its cached token; afterwards it answers connection_not_found', async () => {
    const c = client();
    await c.importConnection('jobber', 'delete-1', { access_token: 'to-delete', expires_in: 3600 });
    await c.getToken('jobber', 'delete-1');
    await c.deleteConnection('jobber', 'delete-1');
    const error = await c.getToken('jobber', 'delete-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerProblemError);
    expect((error as BrokerProblemError).code).toBe('connection_not_found');
    expect((error as BrokerProblemError).status).toBe(404);
    const again = await c.deleteConnection('jobber', 'delete-1').catch((e: unknown) => e);
    expect((again as BrokerProblemError).code).toBe('connection_not_found');
  });

  it('throws typed errors for a wrong key and an unknown provider, without retrying them', async () => {
    const wrongKey = client({ apiKey: 'not-the-key' });
    const unauthorized = await wrongKey.getConnection('jobber', 'x').catch((e: unknown) => e);
    expect((unauthorized as BrokerProblemError).code).toBe('unauthorized');
    expect((unauthorized as BrokerProblemError).status).toBe(401);
    expect((unauthorized as Error).message).not.toContain('not-the-key');
    const unknown = await client()
      .getToken('nope', 'x')
      .catch((e: unknown) => e);
    expect((unknown as BrokerProblemError).code).toBe('provider_not_found');
    expect(sent).toHaveLength(2);
  });

  it('lists the enabled providers', async () => {
    const providers = await client().listProviders();
    expect(providers.map((p) => p.id)).toEqual(['jobber']);
    expect(providers[0]!.redirect_uri).toBe(`${t.broker.publicUrl}/callback/jobber`);
  });

  // Last: it stops this file's Redis.
  it('retries 503 store_unavailable answers, then throws a retryable error', async () => {
    const c = client({ retries: 2 });
    await t.redis.stop();
    const error = await c.getConnection('jobber', 'meta-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerProblemError);
    expect((error as BrokerProblemError).code).toBe('store_unavailable');
    expect((error as BrokerProblemError).status).toBe(503);
    expect((error as BrokerProblemError).retryable).toBe(true);
    expect(sent).toEqual(Array(3).fill('GET /internal/connections/jobber/meta-1'));
  });
});

describe('the package entry oauth-broker/client', () => {
  it('resolves by the package name from the build and exports the client and its error', async () => {
    await ensureBuilt();
    // A separate node process resolves the name through package.json "exports", as a consumer's would.
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        '-e',
        `const c = require('oauth-broker/client');
         process.stdout.write(JSON.stringify({ client: typeof c.BrokerClient, error: typeof c.BrokerProblemError,
           path: require.resolve('oauth-broker/client') }));`,
      ],
      { cwd: join(__dirname, '..', '..'), timeout: 20_000 },
    );
    const answer = JSON.parse(stdout) as { client: string; error: string; path: string };
    expect(answer).toMatchObject({ client: 'function', error: 'function' });
    expect(answer.path).toMatch(/[/\\]packages[/\\]client[/\\]dist[/\\]index\.js$/);
    // A fresh clone builds the broker and the client package first.
  }, 180_000);
});
