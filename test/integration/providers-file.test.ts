import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { useProvidersFiles } from '../helpers/providers-file';
import { untilTrue } from '../helpers/until';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const eventually = (check: () => boolean) => untilTrue(check, 3000);

describe('a provider added through PROVIDERS_FILE', () => {
  const files = useProvidersFiles('providers-file-it');
  const t = useBrokerOnRedis(
    (fakeUrl) => ({
      PROVIDERS_FILE: files.write([
        {
          id: 'acme-crm',
          display_name: 'Acme CRM',
          authorization_url: `${fakeUrl}/authorize`,
          token_url: `${fakeUrl}/token`,
          revocation_url: `${fakeUrl}/revoke`,
          default_scopes: ['contacts.read', 'deals.read'],
          authorization_params: { prompt: 'consent', audience: 'crm-api' },
          token_request: 'json',
          client_auth: 'client_secret_post',
          pkce: 'none',
          expiry: { default_seconds: 1800 },
          refresh_token_rotation: true,
          api_base_url: 'https://api.acme.example/v1',
          docs_url: 'https://developer.acme.example/oauth',
        },
        {
          id: 'acme-eu',
          extends: 'acme-crm',
          display_name: 'Acme CRM (EU)',
          default_scopes: ['contacts.read'],
        },
        { id: 'acme-keys', auth_mode: 'api_key', api_key: { header: 'X-API-KEY' } },
        { id: 'acme-off', authorization_url: `${fakeUrl}/authorize`, token_url: `${fakeUrl}/token` },
      ]),
      ACME_CRM_CLIENT_ID: 'acme-crm-client',
      ACME_CRM_CLIENT_SECRET: 'acme-crm-secret-value',
      ACME_EU_CLIENT_ID: 'acme-eu-client',
      ACME_EU_CLIENT_SECRET: 'acme-eu-secret-value',
    }),
    // No expires_in: the file's `expiry.default_seconds` decides.
    { expiresIn: null, rotateRefreshTokens: true },
    { jobber: false },
  );

  it('connects end to end as its entry declares: extra parameters, scopes, no PKCE, JSON body, client_secret_post', async () => {
    const before = Date.now();
    const result = await t.broker.connect('acme-crm', 'acct-1', { returnTo: RETURN_TO });
    const q = result.authorizeUrl.searchParams;
    expect(`${result.authorizeUrl.origin}${result.authorizeUrl.pathname}`).toBe(`${t.fake.url}/authorize`);
    expect(q.get('prompt')).toBe('consent');
    expect(q.get('audience')).toBe('crm-api');
    expect(q.get('scope')).toBe('contacts.read deals.read');
    expect(q.get('client_id')).toBe('acme-crm-client');
    expect(q.get('redirect_uri')).toBe(`${t.broker.publicUrl}/callback/acme-crm`);
    expect(q.has('code_challenge')).toBe(false);
    expect(q.has('code_challenge_method')).toBe(false);

    expect(result.callback.status).toBe(303);
    const back = new URL(result.callback.location!).searchParams;
    expect(back.get('connected')).toBe('acme-crm');
    expect(back.get('connection_id')).toBe('acct-1');

    const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
    expect(exchange.headers['content-type']).toContain('application/json');
    expect(exchange.headers.authorization).toBeUndefined();
    expect(JSON.parse(exchange.rawBody)).toEqual({
      grant_type: 'authorization_code',
      code: 'code-acct-1',
      redirect_uri: `${t.broker.publicUrl}/callback/acme-crm`,
      client_id: 'acme-crm-client',
      client_secret: 'acme-crm-secret-value',
    });

    const token = await t.broker.api('/internal/connections/acme-crm/acct-1/token');
    expect(token.status).toBe(200);
    expect(token.body.auth_mode).toBe('oauth2');
    expect(token.body.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);
    expect(token.body.scopes).toEqual(['contacts.read', 'deals.read']);
    const expiresAt = Date.parse(token.body.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 1800_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 1800_000 + 1000);
  });

  it('refreshes with a JSON body and keeps the rotated refresh token', async () => {
    await t.broker.connect('acme-crm', 'acct-2', { returnTo: RETURN_TO });
    const first = t.fake.issued[t.fake.issued.length - 1]!;
    const refreshed = await t.broker.api('/internal/connections/acme-crm/acct-2/token?force_refresh=true');
    expect(refreshed.status).toBe(200);
    const refresh = t.fake.refreshRequests[t.fake.refreshRequests.length - 1]!;
    expect(refresh.headers['content-type']).toContain('application/json');
    expect(JSON.parse(refresh.rawBody)).toEqual({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token,
      client_id: 'acme-crm-client',
      client_secret: 'acme-crm-secret-value',
    });
    const again = await t.broker.api('/internal/connections/acme-crm/acct-2/token?force_refresh=true');
    expect(again.status).toBe(200);
    expect(again.body.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);
  });

  it('revokes at the revocation_url of its entry when the connection is deleted', async () => {
    await t.broker.connect('acme-crm', 'acct-3', { returnTo: RETURN_TO });
    const issued = t.fake.issued[t.fake.issued.length - 1]!;
    const before = t.fake.revocations.length;
    expect((await t.broker.api('/internal/connections/acme-crm/acct-3', { method: 'DELETE' })).status).toBe(
      204,
    );
    await eventually(() => t.fake.revocations.length > before);
    const revocation = t.fake.revocations[before]!;
    expect(revocation.params.token).toBe(issued.refresh_token);
    expect(revocation.params.client_id).toBe('acme-crm-client');
  });

  it('connects a provider that extends it with its own credentials, id and redirect URI', async () => {
    const result = await t.broker.connect('acme-eu', 'acct-eu', { returnTo: RETURN_TO });
    const q = result.authorizeUrl.searchParams;
    expect(q.get('client_id')).toBe('acme-eu-client');
    expect(q.get('redirect_uri')).toBe(`${t.broker.publicUrl}/callback/acme-eu`);
    expect(q.get('scope')).toBe('contacts.read');
    expect(q.get('prompt')).toBe('consent');
    expect(new URL(result.callback.location!).searchParams.get('connected')).toBe('acme-eu');
    const exchange = JSON.parse(t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!.rawBody) as Record<
      string,
      string
    >;
    expect(exchange.client_id).toBe('acme-eu-client');
    expect(exchange.client_secret).toBe('acme-eu-secret-value');
    expect((await t.broker.api('/internal/connections/acme-eu/acct-eu/token')).status).toBe(200);
  });

  it('lists the enabled providers with their scopes and redirect URIs, and no secrets', async () => {
    const res = await t.broker.api('/internal/providers');
    expect(res.status).toBe(200);
    const providers = res.body.providers as Array<Record<string, unknown>>;
    expect(providers.map((p) => p.id).sort()).toEqual(['acme-crm', 'acme-eu', 'acme-keys']);
    const crm = providers.find((p) => p.id === 'acme-crm')!;
    expect(crm).toMatchObject({
      display_name: 'Acme CRM',
      auth_mode: 'oauth2',
      scopes: ['contacts.read', 'deals.read'],
      redirect_uri: `${t.broker.publicUrl}/callback/acme-crm`,
      api_base_url: 'https://api.acme.example/v1',
      docs_url: 'https://developer.acme.example/oauth',
    });
    expect(providers.find((p) => p.id === 'acme-eu')).toMatchObject({
      redirect_uri: `${t.broker.publicUrl}/callback/acme-eu`,
      scopes: ['contacts.read'],
    });
    expect(providers.find((p) => p.id === 'acme-keys')).toMatchObject({ auth_mode: 'api_key', scopes: [] });
    const text = JSON.stringify(res.body);
    expect(text).not.toContain('secret-value');
    expect(text).not.toContain('acme-crm-client');
    expect(text).not.toMatch(/client_secret|client_id/);
  });

  it('answers 404 for a provider of the file without credentials, naming the variables that enable it', async () => {
    const res = await t.broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'acme-off', connection_id: 'x' },
    });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('provider_not_enabled');
    expect(res.body.detail).toContain('ACME_OFF_CLIENT_ID');
    expect(res.body.detail).toContain('ACME_OFF_CLIENT_SECRET');
    const unknown = await t.broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'acme-nope', connection_id: 'x' },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('provider_not_found');
  });
});
