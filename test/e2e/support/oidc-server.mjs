// A real authorization server for the browser journeys: panva's oidc-provider (ESM), run as a
// child process of the test (jest runs CommonJS). Configured from OIDC_TEST_SETTINGS (JSON), it
// listens on a free loopback port, says so over IPC, then answers the test's questions about
// what it issued, consumed and revoked. Nothing here knows about the broker: it is the provider.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const settings = JSON.parse(process.env.OIDC_TEST_SETTINGS ?? '{}');

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (settings.clients ?? []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
  })),
  // PKCE for every client, not only public ones (RFC 9700 §2.1.1).
  pkce: { required: () => true },
  // Every refresh rotates; a consumed refresh token presented again revokes the grant
  // (RFC 9700 §4.14.2), which is oidc-provider's behaviour for consumed tokens.
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  ttl: {
    AccessToken: settings.accessTokenTtl ?? 60,
    AuthorizationCode: 60,
    IdToken: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 3600,
  },
  cookies: { keys: ['oidc-e2e-cookie-key-not-a-secret-0123456789'] },
  claims: { openid: ['sub'], profile: ['name'] },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, name: `Test user ${id}` }) }),
});

/** What the server did, for the test to assert on. */
const refreshTokens = []; // { value, grantId, accountId }
const accessTokens = []; // { value, grantId, accountId }
const revokedGrants = [];
const grants = []; // { grant_type, outcome, error? }
const requests = []; // { method, path }

provider.on('refresh_token.saved', (t) => {
  if (!refreshTokens.some((r) => r.value === t.jti))
    refreshTokens.push({ value: t.jti, grantId: t.grantId, accountId: t.accountId });
});
provider.on('access_token.saved', (t) =>
  accessTokens.push({ value: t.jti, grantId: t.grantId, accountId: t.accountId }),
);
provider.on('grant.revoked', (_ctx, grantId) => revokedGrants.push(grantId));
provider.on('grant.success', (ctx) =>
  grants.push({ grant_type: ctx.oidc.params?.grant_type, outcome: 'success' }),
);
provider.on('grant.error', (ctx, err) =>
  grants.push({ grant_type: ctx.oidc.params?.grant_type, outcome: 'error', error: err.error }),
);

const callback = provider.callback();
server.on('request', (req, res) => {
  requests.push({ method: req.method, path: (req.url ?? '').split('?')[0] });
  callback(req, res);
});

/** Each refresh token with its state as the server sees it now: live, consumed, or gone. */
async function refreshTokenStates() {
  return Promise.all(
    refreshTokens.map(async (r) => {
      const found = await provider.RefreshToken.find(r.value, { ignoreExpiration: true });
      return { ...r, state: !found ? 'gone' : found.consumed ? 'consumed' : 'live' };
    }),
  );
}

process.on('message', async (message) => {
  if (!message || typeof message !== 'object') return;
  const { id, cmd } = message;
  try {
    let result;
    if (cmd === 'state') {
      result = { refreshTokens: await refreshTokenStates(), accessTokens, revokedGrants, grants, requests };
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
    process.send({ id, result });
  } catch (error) {
    process.send({ id, error: String(error?.stack ?? error) });
  }
});

// The parent going away (a killed jest worker) takes this server with it.
process.on('disconnect', () => process.exit(0));

process.send({ type: 'ready', issuer });
