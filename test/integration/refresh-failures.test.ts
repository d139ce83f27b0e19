import Redis from 'ioredis';
import { FakeProvider, TokenHandler } from '../helpers/fake-provider';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';

/**
 * How a failed refresh-token grant (RFC 6749 §5.2) shows: the failure classes of docs/api.md,
 * what they do to the connection's status, and that a transient failure leaves the tokens alone.
 */
describe('refresh failures', () => {
  let redis: TestRedis;
  let client: Redis;
  let fake: FakeProvider;
  let broker: TestBroker;
  let seq = 0;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    fake = await FakeProvider.start();
    const closedPort = await freePort();
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      ...providerEnv('bonjoro', fake.url),
      // Nothing listens there: every call fails before reaching a provider.
      ...providerEnv('respond-io', fake.url, {
        RESPOND_IO_TOKEN_URL: `http://127.0.0.1:${closedPort}/token`,
      }),
    });
  });

  afterEach(() => fake.onToken(undefined));

  afterAll(async () => {
    client.disconnect();
    await broker.close();
    await fake.close();
    await redis.close();
  });

  /** Answers every token request this way until the test ends. */
  function answerAlways(status: number, body: string | object, contentType = 'application/json'): void {
    const handler: TokenHandler = (_req, res) => {
      res
        .status(status)
        .type(contentType)
        .send(typeof body === 'string' ? body : JSON.stringify(body));
    };
    fake.onToken(handler);
  }

  /** A connection with a live refresh token and an access token that is stale (100 s < REFRESH_MARGIN) but valid. */
  async function importStale(
    provider = 'bonjoro',
    on: TestBroker = broker,
  ): Promise<{ id: string; access: string; refresh: string }> {
    seq += 1;
    const id = `fail-${seq}`;
    const access = `old-access-${seq}`;
    const refresh = `old-refresh-${seq}`;
    fake.liveRefreshTokens.add(refresh);
    const put = await on.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: access, refresh_token: refresh, expires_in: 100 },
    });
    expect(put.status).toBe(201);
    return { id, access, refresh };
  }

  /** The sealed tokens (a string beside the hash), their key id and expiry as they sit in Redis. */
  const stored = async (provider: string, id: string) => [
    await client.getBuffer(`ob:{${provider}:${id}}:sealed`),
    ...(await client.hmget(`ob:{${provider}:${id}}:conn`, 'key_id', 'expires_at')),
  ];
  const meta = async (provider: string, id: string) =>
    (await broker.api(`/internal/connections/${provider}/${id}`)).body;

  describe('invalid_grant: the user must connect again', () => {
    it('answers 409 reauthorization_required, marks the connection, then answers 409 at once without calling the provider', async () => {
      seq += 1;
      const id = `dead-${seq}`;
      // A refresh token the fake does not know: its default handler answers invalid_grant.
      await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: 'a', refresh_token: 'revoked-at-provider', expires_in: 100 },
      });
      const before = fake.tokenRequests.length;

      const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
      expect(res.body.code).toBe('reauthorization_required');
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(fake.tokenRequests.length).toBe(before + 1);

      const m = await meta('bonjoro', id);
      expect(m.status).toBe('reauthorization_required');
      expect(m.last_error).toMatchObject({
        code: 'reauthorization_required',
        message: expect.stringContaining('invalid_grant'),
      });
      expect(m.refresh_failures).toBe(1);
      expect(m.next_refresh_at).toBeNull();

      for (const query of ['', '?min_validity=0', '?force_refresh=true']) {
        const again = await broker.api(`/internal/connections/bonjoro/${id}/token${query}`);
        expect(again.body.code).toBe('reauthorization_required');
        expect(again.status).toBe(409);
      }
      expect(fake.tokenRequests.length).toBe(before + 1);
    });

    it('is cleared by an import (PUT)', async () => {
      seq += 1;
      const id = `dead-${seq}`;
      await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: 'a', refresh_token: 'unknown-rt', expires_in: 100 },
      });
      expect((await broker.api(`/internal/connections/bonjoro/${id}/token`)).status).toBe(409);
      const created = (await meta('bonjoro', id)).created_at;

      const put = await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: 'revived', expires_in: 3600 },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({
        status: 'active',
        refresh_failures: 0,
        last_error: null,
        last_refreshed_at: null,
        created_at: created,
      });
      const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe('revived');
    });

    it('is cleared by connecting again through the browser flow', async () => {
      const id = 'dead-reconnect';
      await broker.api(`/internal/connections/bonjoro/${id}`, {
        method: 'PUT',
        body: { access_token: 'a', refresh_token: 'unknown-rt', expires_in: 100 },
      });
      expect((await broker.api(`/internal/connections/bonjoro/${id}/token`)).status).toBe(409);

      const result = await broker.connect('bonjoro', id);
      expect(result.callback.status).toBe(200);
      const m = await meta('bonjoro', id);
      expect(m).toMatchObject({ status: 'active', refresh_failures: 0, last_error: null });
      const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
    });
  });

  describe('refusals that retrying will not fix', () => {
    it.each([
      ['invalid_client', 401],
      ['unauthorized_client', 400],
    ])(
      'answers %s with 502 provider_rejected_client, retryable false, and keeps the status',
      async (error, status) => {
        const { id, access } = await importStale();
        const sealedBefore = await stored('bonjoro', id);
        answerAlways(status, { error });
        const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
        expect(res.body.code).toBe('provider_rejected_client');
        expect(res.status).toBe(502);
        expect(res.body.retryable).toBe(false);
        const m = await meta('bonjoro', id);
        expect(m.status).toBe('active');
        expect(m.last_error).toMatchObject({ code: 'provider_rejected_client' });
        expect(m.refresh_failures).toBe(1);
        expect(await stored('bonjoro', id)).toEqual(sealedBefore);
        // Not a reauthorization: the current token is still served to who can use it.
        const current = await broker.api(`/internal/connections/bonjoro/${id}/token?min_validity=0`);
        expect(current.status).toBe(200);
        expect(current.body.access_token).toBe(access);
      },
    );

    it.each([
      ['invalid_scope', 400, { error: 'invalid_scope' }],
      ['an unknown OAuth error', 400, { error: 'something_new' }],
      ['a 403 without an OAuth error', 403, { message: 'nope' }],
    ])(
      'answers %s with 502 provider_unavailable, retryable false, and keeps the status',
      async (_name, status, body) => {
        const { id } = await importStale();
        const sealedBefore = await stored('bonjoro', id);
        answerAlways(status, body);
        const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
        expect(res.body.code).toBe('provider_unavailable');
        expect(res.status).toBe(502);
        expect(res.body.retryable).toBe(false);
        expect((await meta('bonjoro', id)).status).toBe('active');
        expect(await stored('bonjoro', id)).toEqual(sealedBefore);
      },
    );
  });

  describe('transient failures keep the stored tokens', () => {
    const transient: Array<[string, number, string, string]> = [
      ['a 500 with an OAuth error', 500, JSON.stringify({ error: 'server_error' }), 'application/json'],
      ['a 503 HTML page', 503, '<html><body>Service Unavailable</body></html>', 'text/html'],
      ['a 200 HTML page', 200, '<!doctype html><html><body>Login</body></html>', 'text/html'],
      ['truncated JSON', 200, '{"access_token": "at-x", "token_ty', 'application/json'],
      [
        'JSON without access_token',
        200,
        JSON.stringify({ token_type: 'bearer', expires_in: 3600 }),
        'application/json',
      ],
      [
        'an access_token that is a number',
        200,
        JSON.stringify({ access_token: 12345, token_type: 'bearer' }),
        'application/json',
      ],
      ['a JSON array', 200, '[]', 'application/json'],
      ['an empty 200', 200, '', 'application/json'],
      ['a 429', 429, JSON.stringify({ error: 'slow_down' }), 'application/json'],
      ['a redirect', 302, '', 'text/plain'],
    ];

    it.each(transient)(
      'answers %s with 502 provider_unavailable, retryable true, and still serves the old token',
      async (_name, status, body, type) => {
        const { id, access } = await importStale();
        const before = await stored('bonjoro', id);
        const requestsBefore = fake.tokenRequests.length;
        answerAlways(status, body, type);

        const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
        expect(res.body.code).toBe('provider_unavailable');
        expect(res.status).toBe(502);
        expect(res.body.retryable).toBe(true);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.stringify(res.body)).not.toContain(access);
        expect(fake.tokenRequests.length).toBeGreaterThan(requestsBefore);

        expect(await stored('bonjoro', id)).toEqual(before);
        const m = await meta('bonjoro', id);
        expect(m).toMatchObject({
          status: 'active',
          refresh_failures: 1,
          last_error: { code: 'provider_unavailable' },
        });
        const old = await broker.api(`/internal/connections/bonjoro/${id}/token?min_validity=0`);
        expect(old.status).toBe(200);
        expect(old.body.access_token).toBe(access);

        // The provider recovers: the next refresh works (and resets the circuit breaker for the next case).
        fake.onToken(undefined);
        const recovered = await broker.api(`/internal/connections/bonjoro/${id}/token`);
        expect(recovered.status).toBe(200);
        expect(recovered.body.access_token).not.toBe(access);
        expect(await meta('bonjoro', id)).toMatchObject({ refresh_failures: 0, last_error: null });
      },
    );

    it('says until when the current token still works when the refresh fails', async () => {
      const { id } = await importStale();
      const expiresAt = (await meta('bonjoro', id)).expires_at;
      answerAlways(503, 'down', 'text/plain');
      const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
      expect(res.body.code).toBe('provider_unavailable');
      expect(res.body.current_token_expires_at).toBe(expiresAt);
      fake.onToken(undefined);
      expect((await broker.api(`/internal/connections/bonjoro/${id}/token`)).status).toBe(200);
    });

    it('answers a provider that cannot be reached with 502 provider_unavailable, retryable true', async () => {
      const { id, access } = await importStale('respond-io');
      const before = await stored('respond-io', id);
      const res = await broker.api(`/internal/connections/respond-io/${id}/token`);
      expect(res.body.code).toBe('provider_unavailable');
      expect(res.status).toBe(502);
      expect(res.body.retryable).toBe(true);
      expect(await stored('respond-io', id)).toEqual(before);
      expect(
        (await broker.api(`/internal/connections/respond-io/${id}/token?min_validity=0`)).body.access_token,
      ).toBe(access);
    });

    it('answers a provider slower than PROVIDER_TIMEOUT with 502 provider_unavailable, retryable true', async () => {
      const impatient = await startTestBroker({
        REDIS_URL: redis.url,
        PROVIDER_TIMEOUT: '0.5',
        ...providerEnv('bonjoro', fake.url),
      });
      fake.options.tokenDelayMs = 1500;
      try {
        const { id, access } = await importStale('bonjoro', impatient);
        const before = await stored('bonjoro', id);
        const requestsBefore = fake.refreshRequests.length;
        const res = await impatient.api(`/internal/connections/bonjoro/${id}/token`);
        expect(res.body.code).toBe('provider_unavailable');
        expect(res.status).toBe(502);
        expect(res.body.retryable).toBe(true);
        // The request did reach the provider (and may have been acted on): it is not repeated.
        expect(fake.refreshRequests.length).toBe(requestsBefore + 1);
        expect(await stored('bonjoro', id)).toEqual(before);
        const old = await impatient.api(`/internal/connections/bonjoro/${id}/token?min_validity=0`);
        expect(old.status).toBe(200);
        expect(old.body.access_token).toBe(access);
      } finally {
        fake.options.tokenDelayMs = undefined;
        await impatient.close();
      }
    });

    it('counts consecutive failures in refresh_failures, and a success resets them', async () => {
      const { id } = await importStale();
      answerAlways(200, '<html>maintenance</html>', 'text/html');
      for (let n = 1; n <= 3; n++) {
        const res = await broker.api(`/internal/connections/bonjoro/${id}/token?force_refresh=true`);
        expect(res.body.code).toBe('provider_unavailable');
        const m = await meta('bonjoro', id);
        expect(m.refresh_failures).toBe(n);
        // A failed connection is retried by the broker with backoff: it has a next try.
        expect(m.next_refresh_at).not.toBeNull();
      }
      fake.onToken(undefined);
      expect((await broker.api(`/internal/connections/bonjoro/${id}/token?force_refresh=true`)).status).toBe(
        200,
      );
      expect((await meta('bonjoro', id)).refresh_failures).toBe(0);
    });
  });

  // Last: it reads what the tests above counted.
  it('counts every refresh outcome in /metrics, with no token in it', async () => {
    const res = await fetch(`${broker.internalUrl}/metrics`);
    const text = await res.text();
    const count = (outcome: string) => {
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('oauth_broker_refreshes_total{') &&
            l.includes('provider="bonjoro"') &&
            l.includes(`outcome="${outcome}"`) &&
            l.includes('trigger="caller"'),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    };
    expect(count('success')).toBeGreaterThanOrEqual(10);
    expect(count('invalid_grant')).toBe(3);
    expect(count('client_rejected')).toBe(2);
    expect(count('refused')).toBe(3);
    expect(count('unavailable')).toBeGreaterThanOrEqual(14);
    expect(text).not.toMatch(/old-access-|old-refresh-|bonjoro-secret/);
  });
});
