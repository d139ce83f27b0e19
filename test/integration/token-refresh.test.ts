import { FakeProvider, fakeJwt } from '../helpers/fake-provider';
import { providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';

/**
 * GET …/token: a token valid for at least min_validity, refreshed (RFC 6749 §6) only when it is
 * not, or when forced. bonjoro runs on a plain fake (expires_in, no rotation); jobber on a fake
 * that issues JWT access tokens without expires_in and rotates refresh tokens, as Jobber does.
 */
describe('token API refresh (GET /internal/connections/:provider/:id/token)', () => {
  let fake: FakeProvider;
  beforeAll(async () => {
    fake = await FakeProvider.start();
  });
  // jobber on the fixture's fake: JWT access tokens, rotation.
  const t = useBrokerOnRedis(
    (jwtFakeUrl) => ({
      ...providerEnv('bonjoro', fake.url),
      // bexio on the JWT fake: its catalogue entry reads expiry from expires_in only.
      ...providerEnv('bexio', jwtFakeUrl, { BEXIO_ISSUER: '' }),
    }),
    { jwtAccessTokens: true, rotateRefreshTokens: true, expiresIn: 7200 },
  );
  afterAll(() => fake?.close());
  let seq = 0;

  /** Imports a connection whose refresh token the fake accepts. */
  async function importLive(
    provider: string,
    body: Record<string, unknown>,
    on: FakeProvider = fake,
  ): Promise<{ id: string; refresh: string }> {
    seq += 1;
    const id = `conn-${seq}`;
    const refresh = `live-refresh-${seq}`;
    on.liveRefreshTokens.add(refresh);
    const put = await t.broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: `imported-access-${seq}`, refresh_token: refresh, ...body },
    });
    expect(put.status).toBe(201);
    return { id, refresh };
  }

  const token = (provider: string, id: string, query = '') =>
    t.broker.api(`/internal/connections/${provider}/${id}/token${query}`);
  const meta = async (provider: string, id: string) =>
    (await t.broker.api(`/internal/connections/${provider}/${id}`)).body;

  it('refreshes a token that expires within min_validity once, and serves the new token', async () => {
    const { id, refresh } = await importLive('bonjoro', { expires_in: 100 });
    const before = fake.refreshRequests.length;

    const first = await token('bonjoro', id);
    expect(first.status).toBe(200);
    expect(fake.refreshRequests.length).toBe(before + 1);
    const sent = fake.refreshRequests[before]!;
    expect(sent.params.grant_type).toBe('refresh_token');
    expect(sent.params.refresh_token).toBe(refresh);
    expect(first.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
    expect(first.body.access_token).not.toBe(`imported-access-${seq}`);
    expect(Date.parse(first.body.expires_at)).toBeGreaterThan(Date.now() + 3000_000);
    expect(first.body).toMatchObject({ auth_mode: 'oauth2', token_type: 'Bearer' });

    const second = await token('bonjoro', id);
    expect(second.body.access_token).toBe(first.body.access_token);
    expect(fake.refreshRequests.length).toBe(before + 1);
  });

  it('serves a fresh token without calling the provider, whatever min_validity it still meets', async () => {
    const { id } = await importLive('bonjoro', { expires_in: 3600 });
    const before = fake.tokenRequests.length;
    for (const query of ['', '?min_validity=0', '?min_validity=3500', '?force_refresh=false']) {
      const res = await token('bonjoro', id, query);
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe(`imported-access-${seq}`);
    }
    expect(fake.tokenRequests.length).toBe(before);
    // Asking for more life than it has left refreshes it.
    const longer = await token('bonjoro', id, '?min_validity=3700');
    expect(longer.status).toBe(200);
    expect(fake.tokenRequests.length).toBe(before + 1);
    expect(longer.body.access_token).not.toBe(`imported-access-${seq}`);
  });

  it('refreshes a fresh token when force_refresh=true', async () => {
    const { id } = await importLive('bonjoro', { expires_in: 3600 });
    const before = fake.refreshRequests.length;
    const res = await token('bonjoro', id, '?force_refresh=true');
    expect(res.status).toBe(200);
    expect(fake.refreshRequests.length).toBe(before + 1);
    expect(res.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
  });

  it('keeps a non-rotated refresh token: the provider sent none, so the next refresh presents the old one', async () => {
    const { id, refresh } = await importLive('bonjoro', { expires_in: 3600 });
    const before = fake.refreshRequests.length;
    expect((await token('bonjoro', id, '?force_refresh=true')).status).toBe(200);
    expect((await token('bonjoro', id, '?force_refresh=true')).status).toBe(200);
    expect(fake.refreshRequests.slice(before).map((r) => r.params.refresh_token)).toEqual([refresh, refresh]);
  });

  it('answers a freshly refreshed token with 200 even when it lives shorter than min_validity', async () => {
    const { id } = await importLive('bonjoro', { expires_in: 10 });
    fake.options.expiresIn = 60;
    try {
      const res = await token('bonjoro', id, '?min_validity=3600');
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
      expect(Date.parse(res.body.expires_at)).toBeLessThan(Date.now() + 120_000);
    } finally {
      fake.options.expiresIn = undefined;
    }
  });

  it('serves a token of unknown expiry without refreshing it until force_refresh=true', async () => {
    const { id } = await importLive('bonjoro', {});
    const before = fake.tokenRequests.length;
    for (const query of ['', '?min_validity=86400']) {
      const res = await token('bonjoro', id, query);
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe(`imported-access-${seq}`);
      expect(res.body.expires_at).toBeNull();
    }
    expect(fake.tokenRequests.length).toBe(before);
    const forced = await token('bonjoro', id, '?force_refresh=true');
    expect(forced.status).toBe(200);
    expect(fake.tokenRequests.length).toBe(before + 1);
    expect(forced.body.expires_at).not.toBeNull();
  });

  it('serves a token without a refresh token until it expires, then answers 409 reauthorization_required and says so in the status', async () => {
    const id = 'no-refresh';
    await t.broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: 'lonely-access', expires_in: 1 },
    });
    const before = fake.tokenRequests.length;
    // Stale (1 s < min_validity) but alive: served as it is, since nothing can refresh it.
    const alive = await token('bonjoro', id);
    expect(alive.status).toBe(200);
    expect(alive.body.access_token).toBe('lonely-access');
    const forced = await token('bonjoro', id, '?force_refresh=true');
    expect(forced.status).toBe(200);
    expect(forced.body.access_token).toBe('lonely-access');

    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 2; i++) {
      const dead = await token('bonjoro', id);
      expect(dead.body.code).toBe('reauthorization_required');
      expect(dead.status).toBe(409);
    }
    expect(fake.tokenRequests.length).toBe(before);
    const m = await meta('bonjoro', id);
    expect(m.status).toBe('reauthorization_required');
    expect(m.last_error).toMatchObject({ code: 'reauthorization_required' });
    expect(m.next_refresh_at).toBeNull();

    // An import starts the record afresh.
    const put = await t.broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: 'new-lonely', expires_in: 3600 },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ status: 'active', last_error: null, refresh_failures: 0 });
    expect((await token('bonjoro', id)).body.access_token).toBe('new-lonely');
  });

  it('reads the expiry from the JWT exp of a provider whose catalogue says jwt_exp (Jobber)', async () => {
    const result = await t.broker.connect('jobber', 'jwt-connect');
    expect(result.callback.status).toBe(200);
    const issued = t.fake.issued[t.fake.issued.length - 1]!;
    const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
    expect(exchange.params.grant_type).toBe('authorization_code');
    const exp = JSON.parse(Buffer.from(issued.access_token.split('.')[1]!, 'base64url').toString())
      .exp as number;
    const res = await token('jobber', 'jwt-connect');
    expect(res.status).toBe(200);
    expect(res.body.access_token).toBe(issued.access_token);
    expect(res.body.expires_at).toBe(new Date(exp * 1000).toISOString());
    expect((await meta('jobber', 'jwt-connect')).expires_at).toBe(new Date(exp * 1000).toISOString());
  });

  it('refreshes a JWT access token whose exp falls within min_validity', async () => {
    const soon = fakeJwt({ sub: 'x', exp: Math.floor(Date.now() / 1000) + 120 });
    t.fake.liveRefreshTokens.add('jwt-live-refresh');
    // An import states its expiry itself: the JWT's exp is for the provider's own answers.
    await t.broker.api('/internal/connections/jobber/jwt-stale', {
      method: 'PUT',
      body: { access_token: soon, refresh_token: 'jwt-live-refresh', expires_in: 120 },
    });
    const before = t.fake.refreshRequests.length;
    const res = await token('jobber', 'jwt-stale');
    expect(res.status).toBe(200);
    expect(t.fake.refreshRequests.length).toBe(before + 1);
    const exp = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString())
      .exp as number;
    expect(res.body.expires_at).toBe(new Date(exp * 1000).toISOString());
  });

  it('does not read a JWT exp for a provider whose catalogue reads expires_in only (expiry unknown)', async () => {
    const result = await t.broker.connect('bexio', 'jwt-but-not-trusted');
    expect(result.callback.status).toBe(200);
    const res = await token('bexio', 'jwt-but-not-trusted');
    expect(res.status).toBe(200);
    expect(res.body.access_token.split('.')).toHaveLength(3);
    expect(res.body.expires_at).toBeNull();
  });

  it('survives 50 forced refreshes in a row with a provider that kills each refresh token at once (rotation)', async () => {
    const result = await t.broker.connect('jobber', 'rotating');
    expect(result.callback.status).toBe(200);
    let presented = t.fake.issued[t.fake.issued.length - 1]!.refresh_token!;
    let previousAccess = t.fake.issued[t.fake.issued.length - 1]!.access_token;
    const before = t.fake.refreshRequests.length;
    for (let i = 0; i < 50; i++) {
      const res = await token('jobber', 'rotating', '?force_refresh=true');
      expect(res.status).toBe(200);
      const request = t.fake.refreshRequests[before + i]!;
      expect(request.params.refresh_token).toBe(presented);
      const issued = t.fake.issued[t.fake.issued.length - 1]!;
      expect(res.body.access_token).toBe(issued.access_token);
      expect(res.body.access_token).not.toBe(previousAccess);
      expect(t.fake.liveRefreshTokens.has(presented)).toBe(false);
      presented = issued.refresh_token!;
      previousAccess = issued.access_token;
    }
    expect(t.fake.refreshRequests.length).toBe(before + 50);
    const m = await meta('jobber', 'rotating');
    expect(m).toMatchObject({ status: 'active', refresh_failures: 0, last_error: null });
  });

  it('keeps last_refreshed_at and refresh_failures in the metadata', async () => {
    const { id } = await importLive('bonjoro', { expires_in: 3600 });
    const fresh = await meta('bonjoro', id);
    expect(fresh).toMatchObject({
      last_refreshed_at: null,
      refresh_failures: 0,
      last_error: null,
      status: 'active',
    });

    const t0 = Date.now();
    expect((await token('bonjoro', id, '?force_refresh=true')).status).toBe(200);
    const afterRefresh = await meta('bonjoro', id);
    expect(Date.parse(afterRefresh.last_refreshed_at)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(afterRefresh.refresh_failures).toBe(0);

    // A definite refusal (not retried): one failure, recorded.
    fake.failNext(1, 400, { error: 'invalid_scope' });
    const failed = await token('bonjoro', id, '?force_refresh=true');
    expect(failed.body.code).toBe('provider_unavailable');
    const afterFailure = await meta('bonjoro', id);
    expect(afterFailure.refresh_failures).toBe(1);
    expect(afterFailure.last_error).toMatchObject({ code: 'provider_unavailable' });
    expect(afterFailure.last_refreshed_at).toBe(afterRefresh.last_refreshed_at);

    expect((await token('bonjoro', id, '?force_refresh=true')).status).toBe(200);
    const recovered = await meta('bonjoro', id);
    expect(recovered).toMatchObject({ refresh_failures: 0, last_error: null, status: 'active' });
    expect(Date.parse(recovered.last_refreshed_at)).toBeGreaterThanOrEqual(
      Date.parse(afterRefresh.last_refreshed_at),
    );
  });

  it('takes the granted scope of the refresh response as the connection scopes', async () => {
    const { id } = await importLive('bonjoro', { expires_in: 3600, scopes: ['read', 'write', 'admin'] });
    fake.options.grantedScope = 'read write';
    try {
      const res = await token('bonjoro', id, '?force_refresh=true');
      expect(res.body.scopes).toEqual(['read', 'write']);
      expect((await meta('bonjoro', id)).scopes).toEqual(['read', 'write']);
    } finally {
      fake.options.grantedScope = undefined;
    }
    // Without a scope in the response, the scopes stay as they were.
    const again = await token('bonjoro', id, '?force_refresh=true');
    expect(again.body.scopes).toEqual(['read', 'write']);
  });
});
