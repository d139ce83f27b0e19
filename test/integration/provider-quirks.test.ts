import { FakeProvider } from '../helpers/fake-provider';
import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const BEXIO_ISSUER = 'https://auth.bexio.com/realms/bexio';

function jwtExp(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
    exp: number;
  };
  return payload.exp;
}

function outcome(location: string | null): URLSearchParams {
  if (!location) throw new Error('expected a redirect');
  return new URL(location).searchParams;
}

describe('provider quirks, each emulated by a fake provider', () => {
  let fake: FakeProvider;
  beforeAll(async () => {
    fake = await FakeProvider.start();
  });
  // Jobber on the fixture's fake: access tokens are JWTs, no expires_in, and a refresh token dies
  // the moment it is used.
  const t = useBrokerOnRedis(
    () => ({
      // The fake stands in for bexio's Keycloak, so the issuer is named again (an overridden
      // authorization URL drops the catalogue's).
      ...providerEnv('bexio', fake.url, { BEXIO_ISSUER: BEXIO_ISSUER }),
      ...providerEnv('process-street', fake.url),
      ...providerEnv('respond-io', fake.url),
      ...providerEnv('bonjoro', fake.url),
    }),
    { jwtAccessTokens: true, rotateRefreshTokens: true },
  );
  afterAll(() => fake?.close());
  let counter = 0;
  const nextId = (prefix: string) => `${prefix}-${++counter}`;

  afterEach(() => {
    fake.onToken(undefined);
    fake.options = {};
  });

  describe('Jobber', () => {
    it('sends no scope and posts the client credentials in the form body', async () => {
      const id = nextId('jobber');
      const result = await t.broker.connect('jobber', id, { returnTo: RETURN_TO });
      expect(result.authorizeUrl.searchParams.has('scope')).toBe(false);
      expect(result.callback.status).toBe(303);
      const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
      expect(exchange.params.client_id).toBe('jobber-client');
      expect(exchange.params.client_secret).toBe('jobber-secret');
      expect(exchange.headers.authorization).toBeUndefined();
      expect(exchange.params.scope).toBeUndefined();
    });

    it("takes the expiry from the access token's JWT exp when the response has no expires_in", async () => {
      const id = nextId('jobber');
      await t.broker.connect('jobber', id, { returnTo: RETURN_TO });
      const issued = t.fake.issued[t.fake.issued.length - 1]!;
      const expected = new Date(jwtExp(issued.access_token) * 1000).toISOString();
      const meta = await t.broker.api(`/internal/connections/jobber/${id}`);
      expect(meta.body.expires_at).toBe(expected);
      const token = await t.broker.api(`/internal/connections/jobber/${id}/token`);
      expect(token.status).toBe(200);
      expect(token.body).toMatchObject({
        auth_mode: 'oauth2',
        access_token: issued.access_token,
        token_type: 'Bearer',
        expires_at: expected,
      });
    });

    it('stores each rotated refresh token at once, so the next refresh presents the new one', async () => {
      const id = nextId('jobber');
      await t.broker.connect('jobber', id, { returnTo: RETURN_TO });
      const first = t.fake.issued[t.fake.issued.length - 1]!;
      const refreshesBefore = t.fake.refreshRequests.length;

      const second = await t.broker.api(`/internal/connections/jobber/${id}/token?force_refresh=true`);
      expect(second.status).toBe(200);
      const secondIssue = t.fake.issued[t.fake.issued.length - 1]!;
      expect(second.body.access_token).toBe(secondIssue.access_token);
      expect(t.fake.refreshRequests[refreshesBefore]!.params.refresh_token).toBe(first.refresh_token);
      // The old refresh token is dead at the provider now.
      expect(t.fake.liveRefreshTokens.has(first.refresh_token!)).toBe(false);

      const third = await t.broker.api(`/internal/connections/jobber/${id}/token?force_refresh=true`);
      expect(third.status).toBe(200);
      expect(t.fake.refreshRequests[refreshesBefore + 1]!.params.refresh_token).toBe(
        secondIssue.refresh_token,
      );
      expect(t.fake.refreshRequests[refreshesBefore + 1]!.params.client_secret).toBe('jobber-secret');
      const meta = await t.broker.api(`/internal/connections/jobber/${id}`);
      expect(meta.body.status).toBe('active');
      expect(meta.body.refresh_failures).toBe(0);
      expect(meta.body.expires_at).toBe(new Date(jwtExp(third.body.access_token) * 1000).toISOString());
    });
  });

  describe('bexio iss (RFC 9207)', () => {
    it('refuses a callback without iss, calls no token endpoint and stores nothing', async () => {
      const id = nextId('bexio');
      const before = fake.tokenRequests.length;
      const result = await t.broker.connect('bexio', id, { returnTo: RETURN_TO });
      expect(result.callback.status).toBe(303);
      expect(outcome(result.callback.location).get('error')).toBe('invalid_issuer');
      expect(fake.tokenRequests.length).toBe(before);
      expect((await t.broker.api(`/internal/connections/bexio/${id}`)).status).toBe(404);
    });

    it.each([
      ['another issuer', 'https://evil.example/realms/bexio'],
      ['a trailing slash', `${BEXIO_ISSUER}/`],
      ['another case', BEXIO_ISSUER.toUpperCase()],
    ])('refuses an iss that differs by %s', async (_how, iss) => {
      const id = nextId('bexio');
      const before = fake.tokenRequests.length;
      const result = await t.broker.connect('bexio', id, { returnTo: RETURN_TO, callbackQuery: { iss } });
      expect(outcome(result.callback.location).get('error')).toBe('invalid_issuer');
      expect(fake.tokenRequests.length).toBe(before);
      expect((await t.broker.api(`/internal/connections/bexio/${id}`)).status).toBe(404);
    });

    it('accepts the callback whose iss equals the issuer', async () => {
      const id = nextId('bexio');
      const result = await t.broker.connect('bexio', id, {
        returnTo: RETURN_TO,
        callbackQuery: { iss: BEXIO_ISSUER },
      });
      expect(result.callback.status).toBe(303);
      const back = outcome(result.callback.location);
      expect(back.get('connected')).toBe('bexio');
      expect(back.get('connection_id')).toBe(id);
      expect(result.authorizeUrl.searchParams.get('scope')).toBe('openid offline_access');
      expect((await t.broker.api(`/internal/connections/bexio/${id}/token`)).status).toBe(200);
    });

    it('checks iss on an error response too', async () => {
      const withoutIss = await t.broker.connect('bexio', nextId('bexio'), {
        returnTo: RETURN_TO,
        callbackQuery: { code: '', error: 'access_denied' },
      });
      expect(outcome(withoutIss.callback.location).get('error')).toBe('invalid_issuer');
      const withIss = await t.broker.connect('bexio', nextId('bexio'), {
        returnTo: RETURN_TO,
        callbackQuery: { code: '', error: 'access_denied', iss: BEXIO_ISSUER },
      });
      expect(outcome(withIss.callback.location).get('error')).toBe('access_denied');
    });

    it('stores the scopes granted when the user deselected some at consent', async () => {
      const id = nextId('bexio');
      fake.options.grantedScope = 'openid offline_access contact_show';
      const result = await t.broker.connect('bexio', id, {
        returnTo: RETURN_TO,
        scopes: ['openid', 'offline_access', 'contact_show', 'contact_edit'],
        callbackQuery: { iss: BEXIO_ISSUER },
      });
      expect(result.authorizeUrl.searchParams.get('scope')).toBe(
        'openid offline_access contact_show contact_edit',
      );
      const meta = await t.broker.api(`/internal/connections/bexio/${id}`);
      expect(meta.body.scopes).toEqual(['openid', 'offline_access', 'contact_show']);
      const token = await t.broker.api(`/internal/connections/bexio/${id}/token`);
      expect(token.body.scopes).toEqual(['openid', 'offline_access', 'contact_show']);
    });
  });

  describe('Process Street (seed OAuth)', () => {
    it('sends its default scopes comma separated and reads a comma separated scope back', async () => {
      const id = nextId('ps');
      fake.options.grantedScope = 'read,write';
      const result = await t.broker.connect('process-street', id, { returnTo: RETURN_TO });
      expect(result.authorizeUrl.searchParams.get('scope')).toBe('read,write');
      expect(result.authorizeUrl.search).toContain('scope=read%2Cwrite');
      const meta = await t.broker.api(`/internal/connections/process-street/${id}`);
      expect(meta.body.scopes).toEqual(['read', 'write']);
    });
  });

  describe('token responses', () => {
    it('keeps the requested scopes when the token response has no scope', async () => {
      const id = nextId('rio');
      await t.broker.connect('respond-io', id, { returnTo: RETURN_TO, scopes: ['messages', 'contacts'] });
      expect((await t.broker.api(`/internal/connections/respond-io/${id}`)).body.scopes).toEqual([
        'messages',
        'contacts',
      ]);
      expect((await t.broker.api(`/internal/connections/respond-io/${id}/token`)).body.scopes).toEqual([
        'messages',
        'contacts',
      ]);
    });

    it('reads a form-encoded token response', async () => {
      const id = nextId('rio');
      fake.onToken((_req, res) => {
        res
          .type('application/x-www-form-urlencoded')
          .send('access_token=form-at-1&token_type=bearer&expires_in=3600&refresh_token=form-rt-1');
      });
      const before = Date.now();
      const result = await t.broker.connect('respond-io', id, { returnTo: RETURN_TO });
      expect(outcome(result.callback.location).get('connected')).toBe('respond-io');
      const token = await t.broker.api(`/internal/connections/respond-io/${id}/token`);
      expect(token.body.access_token).toBe('form-at-1');
      expect(token.body.token_type).toBe('bearer');
      expect(Date.parse(token.body.expires_at)).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    });

    it('reads expires_in given as a string', async () => {
      const id = nextId('bonjoro');
      fake.onToken((_req, res) => {
        res.json({
          access_token: 'str-exp-at',
          token_type: 'Bearer',
          expires_in: '7200',
          refresh_token: 'str-exp-rt',
        });
      });
      const before = Date.now();
      await t.broker.connect('bonjoro', id, { returnTo: RETURN_TO });
      const after = Date.now();
      const expiresAt = Date.parse(
        (await t.broker.api(`/internal/connections/bonjoro/${id}`)).body.expires_at,
      );
      expect(expiresAt).toBeGreaterThanOrEqual(before + 7200_000 - 1000);
      expect(expiresAt).toBeLessThanOrEqual(after + 7200_000 + 1000);
    });

    it.each([
      ['missing', 'Bearer', undefined],
      ['lower case', 'bearer', 'bearer'],
      ['upper case', 'BEARER', 'BEARER'],
      ['of another scheme', 'DPoP', 'DPoP'],
    ])('answers a token_type %s as %s', async (_how, answered, sent) => {
      const id = nextId('bonjoro');
      fake.onToken((_req, res) => {
        res.json({
          access_token: `tt-${id}`,
          expires_in: 3600,
          ...(sent === undefined ? {} : { token_type: sent }),
        });
      });
      await t.broker.connect('bonjoro', id, { returnTo: RETURN_TO });
      const token = await t.broker.api(`/internal/connections/bonjoro/${id}/token`);
      expect(token.body.access_token).toBe(`tt-${id}`);
      expect(token.body.token_type).toBe(answered);
    });
  });

  describe('an HTML error page from the token endpoint', () => {
    const HTML =
      '<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>';

    it.each([
      [400, 'token_exchange_failed'],
      [401, 'token_exchange_failed'],
      [404, 'token_exchange_failed'],
      [500, 'provider_unavailable'],
      [502, 'provider_unavailable'],
      [503, 'provider_unavailable'],
      [200, 'provider_unavailable'],
    ])('answered with status %i redirects with error=%s and stores nothing', async (status, error) => {
      const id = nextId('ps-html');
      fake.failNext(1, status, HTML, 'text/html; charset=utf-8');
      const before = fake.tokenRequests.length;
      const result = await t.broker.connect('process-street', id, { returnTo: RETURN_TO });
      expect(result.callback.status).toBe(303);
      const back = outcome(result.callback.location);
      expect(back.get('error')).toBe(error);
      expect(back.has('connected')).toBe(false);
      // A code is never exchanged twice.
      expect(fake.tokenRequests.length).toBe(before + 1);
      expect((await t.broker.api(`/internal/connections/process-street/${id}`)).status).toBe(404);
    });
  });
});
