import Redis from 'ioredis';
import { TEST_RETURN_ORIGIN, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';

// PROVIDER_TIMEOUT for the whole file; every slow provider here takes far longer.
const TIMEOUT_S = 0.5;
const SLOW_MS = 3000;
const CIRCUIT_OPEN_S = 1;

/**
 * A provider that misbehaves: slow, failing, or resetting connections. Every outbound call has a
 * timeout; only calls that are safe to repeat are repeated; a failing provider's circuit opens
 * (per provider) and half-opens to probe; a failed call never changes stored tokens.
 */
describe('provider trouble', () => {
  let redis: TestRedis;
  let client: Redis;
  let slow: FakeProvider; // jobber
  let flaky: FakeProvider; // process-street
  let failing: FakeProvider; // bexio
  let healthy: FakeProvider; // bonjoro
  let broker: TestBroker;
  let seq = 0;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    [slow, flaky, failing, healthy] = await Promise.all([
      FakeProvider.start(),
      FakeProvider.start({ rotateRefreshTokens: true }),
      FakeProvider.start(),
      FakeProvider.start(),
    ]);
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      PROVIDER_TIMEOUT: String(TIMEOUT_S),
      PROVIDER_CIRCUIT_THRESHOLD: '3',
      PROVIDER_CIRCUIT_OPEN: String(CIRCUIT_OPEN_S),
      ...providerEnv('jobber', slow.url),
      ...providerEnv('process-street', flaky.url),
      ...providerEnv('bexio', failing.url),
      ...providerEnv('bonjoro', healthy.url),
    });
  });

  afterEach(() => {
    for (const fake of [slow, flaky, failing, healthy]) {
      fake.onToken(undefined);
      fake.options.tokenDelayMs = undefined;
      fake.options.revokeDelayMs = undefined;
    }
  });

  afterAll(async () => {
    client.disconnect();
    await broker.close();
    await Promise.all([slow, flaky, failing, healthy].map((f) => f.close()));
    await redis.close();
  });

  /** A connection with tokens the fake knows (fresh for an hour); answers its id and tokens. */
  async function imported(
    provider: string,
    fake: FakeProvider,
  ): Promise<{ id: string; access: string; refresh: string }> {
    seq += 1;
    const id = `trouble-${seq}`;
    const minted = fake.mint();
    const put = await broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
    });
    expect(put.status).toBe(201);
    return { id, access: minted.access_token as string, refresh: minted.refresh_token as string };
  }

  /** The sealed tokens (a string beside the hash) and their key id as they sit in Redis. */
  const sealed = async (provider: string, id: string) => [
    await client.getBuffer(`ob:{${provider}:${id}}:sealed`),
    await client.hget(`ob:{${provider}:${id}}:conn`, 'key_id'),
  ];

  async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = Date.now();
    const value = await work();
    return { value, ms: Date.now() - started };
  }

  describe('PROVIDER_TIMEOUT bounds every outbound call', () => {
    it('gives up a code exchange the provider does not answer in time: error=provider_unavailable, nothing stored', async () => {
      slow.options.tokenDelayMs = SLOW_MS;
      const { value: result, ms } = await timed(() =>
        broker.connect('jobber', 'slow-connect', { returnTo: `${TEST_RETURN_ORIGIN}/integrations` }),
      );
      expect(result.callback.status).toBe(303);
      expect(new URL(result.callback.location!).searchParams.get('error')).toBe('provider_unavailable');
      expect(ms).toBeLessThan(SLOW_MS);
      expect(slow.tokenRequests.filter((r) => r.params.code === 'code-slow-connect')).toHaveLength(1);
      expect((await broker.api('/internal/connections/jobber/slow-connect')).status).toBe(404);
    });

    it('gives up a refresh the provider does not answer in time: 502 retryable, sent once, tokens unchanged', async () => {
      const { id, access } = await imported('jobber', slow);
      const before = await sealed('jobber', id);
      const requests = slow.refreshRequests.length;
      slow.options.tokenDelayMs = SLOW_MS;
      const { value: res, ms } = await timed(() =>
        broker.api(`/internal/connections/jobber/${id}/token?force_refresh=true`),
      );
      expect(res.body.code).toBe('provider_unavailable');
      expect(res.status).toBe(502);
      expect(res.body.retryable).toBe(true);
      expect(ms).toBeLessThan(SLOW_MS);
      // It may have reached the provider and been acted on: a timed-out refresh is not repeated.
      expect(slow.refreshRequests.length).toBe(requests + 1);
      expect(await sealed('jobber', id)).toEqual(before);
      expect((await broker.api(`/internal/connections/jobber/${id}/token`)).body.access_token).toBe(access);
    });

    it('answers a delete at once and abandons a revocation the provider does not answer in time', async () => {
      const { id, refresh } = await imported('jobber', slow);
      slow.options.revokeDelayMs = SLOW_MS;
      const { value: res, ms } = await timed(() =>
        broker.api(`/internal/connections/jobber/${id}`, { method: 'DELETE' }),
      );
      expect(res.status).toBe(204);
      expect(ms).toBeLessThan(SLOW_MS);
      // The revocation went out, and the broker stopped waiting for it after PROVIDER_TIMEOUT.
      const drained = await timed(() => broker.broker.connections.drain());
      expect(drained.ms).toBeLessThan(SLOW_MS - 500);
      expect(slow.revocations.map((r) => r.params.token)).toContain(refresh);
    });
  });

  describe('retries only where repeating is safe', () => {
    it('repeats a refresh answered with a 5xx once, after a pause, and serves the new token', async () => {
      const { id, refresh } = await imported('process-street', flaky);
      const requests = flaky.refreshRequests.length;
      flaky.failNext(1, 503, { error: 'temporarily_unavailable' });
      const res = await broker.api(`/internal/connections/process-street/${id}/token?force_refresh=true`);
      expect(res.status).toBe(200);
      const tries = flaky.refreshRequests.slice(requests);
      expect(tries).toHaveLength(2);
      // The provider refused the first with a 5xx, so the same refresh token is presented again.
      expect(tries.map((t) => t.params.refresh_token)).toEqual([refresh, refresh]);
      expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(100);
      expect(res.body.access_token).toBe(flaky.issued[flaky.issued.length - 1]!.access_token);
    });

    it('gives up after one repeat: two 5xx answer 502 retryable and leave the tokens as they were', async () => {
      const { id, access } = await imported('process-street', flaky);
      const before = await sealed('process-street', id);
      const requests = flaky.refreshRequests.length;
      flaky.failNext(2, 500, 'Internal Server Error', 'text/plain');
      const res = await broker.api(`/internal/connections/process-street/${id}/token?force_refresh=true`);
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ code: 'provider_unavailable', retryable: true });
      expect(flaky.refreshRequests.length - requests).toBe(2);
      expect(await sealed('process-street', id)).toEqual(before);
      expect((await broker.api(`/internal/connections/process-street/${id}/token`)).body.access_token).toBe(
        access,
      );
    });

    it('never repeats a refresh refused with a 4xx', async () => {
      const { id } = await imported('process-street', flaky);
      const before = await sealed('process-street', id);
      const requests = flaky.refreshRequests.length;
      flaky.failNext(1, 400, { error: 'invalid_request' });
      const res = await broker.api(`/internal/connections/process-street/${id}/token?force_refresh=true`);
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ code: 'provider_unavailable', retryable: false });
      expect(flaky.refreshRequests.length - requests).toBe(1);
      expect(await sealed('process-street', id)).toEqual(before);
    });

    it('never repeats a refresh whose connection broke after the request was sent', async () => {
      const { id, access } = await imported('process-street', flaky);
      const before = await sealed('process-street', id);
      const requests = flaky.refreshRequests.length;
      flaky.onToken((_req, res) => void res.destroy());
      const res = await broker.api(`/internal/connections/process-street/${id}/token?force_refresh=true`);
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ code: 'provider_unavailable', retryable: true });
      expect(flaky.refreshRequests.length - requests).toBe(1);
      expect(await sealed('process-street', id)).toEqual(before);
      flaky.onToken(undefined);
      expect((await broker.api(`/internal/connections/process-street/${id}/token`)).body.access_token).toBe(
        access,
      );
    });

    it('never repeats a code exchange, even after a 5xx (a code is single use)', async () => {
      const exchanges = () =>
        flaky.tokenRequests.filter((r) => r.params.grant_type === 'authorization_code').length;
      const before = exchanges();
      flaky.failNext(1, 503, { error: 'temporarily_unavailable' });
      const result = await broker.connect('process-street', 'code-5xx', {
        returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
      });
      expect(new URL(result.callback.location!).searchParams.get('error')).toBe('provider_unavailable');
      expect(exchanges() - before).toBe(1);
      expect((await broker.api('/internal/connections/process-street/code-5xx')).status).toBe(404);
    });
  });

  describe('circuit breaker per provider', () => {
    it('opens after repeated failures and answers 502 without calling the provider, other providers unaffected', async () => {
      const conns = await Promise.all([imported('bexio', failing), imported('bexio', failing)]);
      const before = await Promise.all(conns.map((c) => sealed('bexio', c.id)));
      failing.options.tokenDelayMs = SLOW_MS;

      // Three timeouts in a row (PROVIDER_CIRCUIT_THRESHOLD=3).
      for (let i = 0; i < 3; i++) {
        const res = await broker.api(`/internal/connections/bexio/${conns[0]!.id}/token?force_refresh=true`);
        expect(res.body.code).toBe('provider_unavailable');
      }
      const sent = failing.refreshRequests.length;
      expect(sent).toBe(3);

      // Open: answered at once, nothing sent, for every connection of that provider.
      for (const c of conns) {
        const { value: res, ms } = await timed(() =>
          broker.api(`/internal/connections/bexio/${c.id}/token?force_refresh=true`),
        );
        expect(res.status).toBe(502);
        expect(res.body).toMatchObject({ code: 'provider_unavailable', retryable: true });
        expect(ms).toBeLessThan(TIMEOUT_S * 1000);
      }
      expect(failing.refreshRequests.length).toBe(sent);
      // The stored token still serves callers that can live with it.
      expect((await broker.api(`/internal/connections/bexio/${conns[1]!.id}/token`)).body.access_token).toBe(
        conns[1]!.access,
      );

      // Another provider's circuit is its own.
      const other = await imported('bonjoro', healthy);
      expect(
        (await broker.api(`/internal/connections/bonjoro/${other.id}/token?force_refresh=true`)).status,
      ).toBe(200);

      // Half-open after PROVIDER_CIRCUIT_OPEN: one probe goes out; it fails, so the circuit reopens.
      await new Promise((r) => setTimeout(r, CIRCUIT_OPEN_S * 1000 + 100));
      const probe = await broker.api(`/internal/connections/bexio/${conns[0]!.id}/token?force_refresh=true`);
      expect(probe.status).toBe(502);
      expect(failing.refreshRequests.length).toBe(sent + 1);
      const reopened = await timed(() =>
        broker.api(`/internal/connections/bexio/${conns[0]!.id}/token?force_refresh=true`),
      );
      expect(reopened.value.status).toBe(502);
      expect(reopened.ms).toBeLessThan(TIMEOUT_S * 1000);
      expect(failing.refreshRequests.length).toBe(sent + 1);
      // Six failed calls later, the stored tokens are what they were.
      expect(await Promise.all(conns.map((c) => sealed('bexio', c.id)))).toEqual(before);

      // The provider recovers. Next half-open: one probe at a time (the other caller is refused
      // at once); its success closes the circuit.
      failing.options.tokenDelayMs = 200;
      await new Promise((r) => setTimeout(r, CIRCUIT_OPEN_S * 1000 + 100));
      const [first, second] = await Promise.all(
        conns.map((c) => broker.api(`/internal/connections/bexio/${c.id}/token?force_refresh=true`)),
      );
      expect([first!.status, second!.status].sort()).toEqual([200, 502]);
      expect(failing.refreshRequests.length).toBe(sent + 2);
      const closed = await broker.api(`/internal/connections/bexio/${conns[1]!.id}/token?force_refresh=true`);
      expect(closed.status).toBe(200);
      expect(failing.refreshRequests.length).toBe(sent + 3);
    });
  });
});
