import { buildAuthorizationUrl } from '../../../src/oauth/build-authorization-url';
import { RawHttpResponse, parseTokenResponse } from '../../../src/oauth/parse-token-response';
import { codeChallengeS256 } from '../../../src/oauth/pkce';
import { ProviderHttp, ProviderRequest } from '../../../src/oauth/provider-http';
import { requestToken } from '../../../src/oauth/request-token';
import { loadProviderRegistry } from '../../../src/providers/load-registry';
import { Provider } from '../../../src/providers/provider-definition';

const PUBLIC_URL = 'https://connect.example.com';
// Characters that RFC 6749 §2.3.1 requires to be form-urlencoded before Basic: space, ':', '/', '+', '&', '%', '@'.
const CLIENT_ID = 'my client:1';
const CLIENT_SECRET = 'p@ss/w+rd&%';
const CLIENT_ID_FORM = 'my+client%3A1';
const CLIENT_SECRET_FORM = 'p%40ss%2Fw%2Brd%26%25';
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const NOW_S = NOW / 1000;

function jwt(payload: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
}

function json(body: Record<string, unknown>): RawHttpResponse {
  return { status: 200, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) };
}

interface CatalogueCase {
  id: string;
  authorizationUrl: string;
  tokenUrl: string;
  revocationUrl: string | null;
  issuer: string | null;
  /** The `scope` parameter as sent, or null when none is sent. */
  scope: string | null;
  pkce: boolean;
  clientAuth: 'basic' | 'post';
  rotation: boolean;
  apiKey: { header: string; prefix: string };
  /** A token response as that provider (or its seed description) answers a code exchange. */
  response: RawHttpResponse;
  expected: {
    expiresAt: number | null;
    tokenType: string;
    grantedScopes: string[] | undefined;
    refreshToken: string | undefined;
  };
}

const JOBBER_EXP = NOW_S + 3600;

const CASES: CatalogueCase[] = [
  {
    id: 'bexio',
    authorizationUrl: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/auth',
    tokenUrl: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/token',
    revocationUrl: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/revoke',
    issuer: 'https://auth.bexio.com/realms/bexio',
    scope: 'openid offline_access',
    pkce: true,
    clientAuth: 'basic',
    rotation: true,
    apiKey: { header: 'Authorization', prefix: 'Bearer ' },
    // Keycloak's answer: offline token (refresh_expires_in 0), id_token, and the scopes granted,
    // which may be fewer than asked for when the user deselected some at consent.
    response: json({
      access_token: jwt({ exp: NOW_S + 3600, iss: 'https://auth.bexio.com/realms/bexio' }),
      expires_in: 3600,
      refresh_expires_in: 0,
      refresh_token: 'bexio-offline-refresh',
      token_type: 'Bearer',
      id_token: jwt({ sub: 'u1' }),
      'not-before-policy': 0,
      session_state: '6f1c1b0e-57f7-4b8a-9a0e-0a4e1d0c2b11',
      scope: 'openid offline_access contact_show',
    }),
    expected: {
      expiresAt: NOW + 3600 * 1000,
      tokenType: 'Bearer',
      grantedScopes: ['openid', 'offline_access', 'contact_show'],
      refreshToken: 'bexio-offline-refresh',
    },
  },
  {
    id: 'jobber',
    authorizationUrl: 'https://api.getjobber.com/api/oauth/authorize',
    tokenUrl: 'https://api.getjobber.com/api/oauth/token',
    revocationUrl: null,
    issuer: null,
    scope: null,
    pkce: true,
    clientAuth: 'post',
    rotation: true,
    apiKey: { header: 'Authorization', prefix: 'Bearer ' },
    // No expires_in, no token_type: the JWT's `exp` is the only expiry there is.
    response: json({
      access_token: jwt({ sub: 'jobber-user', exp: JOBBER_EXP }),
      refresh_token: 'jobber-refresh-1',
    }),
    expected: {
      expiresAt: JOBBER_EXP * 1000,
      tokenType: 'Bearer',
      grantedScopes: undefined,
      refreshToken: 'jobber-refresh-1',
    },
  },
  {
    id: 'bonjoro',
    authorizationUrl: 'https://app.bonjoro.com/oauth/authorize',
    tokenUrl: 'https://app.bonjoro.com/oauth/token',
    revocationUrl: null,
    issuer: null,
    scope: null,
    pkce: true,
    clientAuth: 'basic',
    rotation: false,
    apiKey: { header: 'Authorization', prefix: 'Bearer ' },
    // Bonjoro's API v2 reference: a year-long JWT bearer token and a refresh token.
    response: json({
      token_type: 'Bearer',
      expires_in: 31536000,
      access_token: jwt({ sub: '42' }),
      refresh_token: 'def50200bonjoro',
    }),
    expected: {
      expiresAt: NOW + 31536000 * 1000,
      tokenType: 'Bearer',
      grantedScopes: undefined,
      refreshToken: 'def50200bonjoro',
    },
  },
  {
    id: 'process-street',
    authorizationUrl: 'https://app.process.st/oauth/authorize',
    tokenUrl: 'https://app.process.st/oauth/token',
    revocationUrl: null,
    issuer: null,
    scope: 'read,write',
    pkce: true,
    clientAuth: 'basic',
    rotation: false,
    apiKey: { header: 'X-API-KEY', prefix: '' },
    // The seed's OAuth: lower-case token_type, expires_in as a string, comma separated scopes.
    response: json({
      access_token: 'ps-at',
      token_type: 'bearer',
      expires_in: '7200',
      scope: 'read,write',
      refresh_token: 'ps-rt',
    }),
    expected: {
      expiresAt: NOW + 7200 * 1000,
      tokenType: 'bearer',
      grantedScopes: ['read', 'write'],
      refreshToken: 'ps-rt',
    },
  },
  {
    id: 'respond-io',
    authorizationUrl: 'https://app.respond.io/oauth/authorize',
    tokenUrl: 'https://app.respond.io/oauth/token',
    revocationUrl: null,
    issuer: null,
    scope: null,
    pkce: true,
    clientAuth: 'basic',
    rotation: false,
    apiKey: { header: 'Authorization', prefix: 'Bearer ' },
    // A form-encoded answer without expires_in: nothing tells the expiry.
    response: {
      status: 200,
      contentType: 'application/x-www-form-urlencoded',
      body: 'access_token=rio-at&token_type=Bearer',
    },
    expected: { expiresAt: null, tokenType: 'Bearer', grantedScopes: undefined, refreshToken: undefined },
  },
];

function registryWithCredentials() {
  const env: Record<string, string> = {};
  for (const c of CASES) {
    const prefix = c.id.toUpperCase().replace(/-/g, '_');
    env[`${prefix}_CLIENT_ID`] = CLIENT_ID;
    env[`${prefix}_CLIENT_SECRET`] = CLIENT_SECRET;
  }
  return loadProviderRegistry({
    providersFile: undefined,
    publicUrl: PUBLIC_URL,
    allowInsecureProviderUrls: false,
    keepaliveAfterSeconds: undefined,
    env,
  });
}

function recordingHttp(response: RawHttpResponse): { http: ProviderHttp; calls: ProviderRequest[] } {
  const calls: ProviderRequest[] = [];
  return {
    calls,
    http: async (request) => {
      calls.push(request);
      return response;
    },
  };
}

function formBody(request: ProviderRequest): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(request.body ?? ''));
}

describe('the built-in catalogue, provider by provider', () => {
  const registry = registryWithCredentials();
  const provider = (id: string): Provider => registry.get(id)!;

  it('holds exactly the five built-in providers', () => {
    expect(
      registry
        .all()
        .map((p) => p.id)
        .sort(),
    ).toEqual(CASES.map((c) => c.id).sort());
  });

  describe.each(CASES)('$id', (c) => {
    it('declares the endpoints, issuer, rotation and key header it is documented with', () => {
      const p = provider(c.id);
      expect(p.enabled).toBe(true);
      expect(p.auth_mode).toBe('oauth2');
      expect(p.authorization_url).toBe(c.authorizationUrl);
      expect(p.token_url).toBe(c.tokenUrl);
      expect(p.revocation_url ?? null).toBe(c.revocationUrl);
      expect(p.issuer ?? null).toBe(c.issuer);
      expect(p.refresh_token_rotation).toBe(c.rotation);
      expect(p.redirect_uri).toBe(`${PUBLIC_URL}/callback/${c.id}`);
      expect(p.docs_url).toMatch(/^https:\/\//);
      expect(p.api_base_url).toMatch(/^https:\/\//);
      expect({
        header: p.api_key?.header ?? 'Authorization',
        prefix: p.api_key ? p.api_key.prefix : 'Bearer ',
      }).toEqual(c.apiKey);
    });

    it('builds the authorization URL the provider expects', () => {
      const p = provider(c.id);
      const url = new URL(
        buildAuthorizationUrl(p, { state: 'state-123', codeVerifier: 'v'.repeat(43), scopes: p.scopes }),
      );
      expect(`${url.origin}${url.pathname}`).toBe(c.authorizationUrl);
      const q = url.searchParams;
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe(CLIENT_ID);
      expect(q.get('redirect_uri')).toBe(`${PUBLIC_URL}/callback/${c.id}`);
      expect(q.get('state')).toBe('state-123');
      expect(q.get('scope')).toBe(c.scope);
      if (c.pkce) {
        expect(q.get('code_challenge')).toBe(codeChallengeS256('v'.repeat(43)));
        expect(q.get('code_challenge_method')).toBe('S256');
      } else {
        expect(q.has('code_challenge')).toBe(false);
        expect(q.has('code_challenge_method')).toBe(false);
      }
      // Scopes travel joined by the provider's separator, encoded once.
      if (c.scope !== null)
        expect(url.search).toContain(`scope=${encodeURIComponent(c.scope).replace(/%20/g, '+')}`);
    });

    it('exchanges a code with the declared body format and client authentication', async () => {
      const p = provider(c.id);
      const { http, calls } = recordingHttp(c.response);
      await requestToken({ http, breakers: new Map(), retries: 0 }, p, {
        grant_type: 'authorization_code',
        code: 'the-code',
        redirect_uri: p.redirect_uri,
        code_verifier: c.pkce ? 'v'.repeat(43) : undefined,
      });
      expect(calls).toHaveLength(1);
      const sent = calls[0]!;
      expect(sent.method).toBe('POST');
      expect(sent.url).toBe(c.tokenUrl);
      expect(sent.headers?.['Content-Type']).toBe('application/x-www-form-urlencoded');
      expect(sent.headers?.Accept).toBe('application/json');
      const body = formBody(sent);
      expect(body.grant_type).toBe('authorization_code');
      expect(body.code).toBe('the-code');
      expect(body.redirect_uri).toBe(`${PUBLIC_URL}/callback/${c.id}`);
      expect(body.code_verifier).toBe(c.pkce ? 'v'.repeat(43) : undefined);
      expect(body.scope).toBeUndefined();
      if (c.clientAuth === 'basic') {
        expect(sent.headers?.Authorization).toBe(
          `Basic ${Buffer.from(`${CLIENT_ID_FORM}:${CLIENT_SECRET_FORM}`).toString('base64')}`,
        );
        expect(body.client_secret).toBeUndefined();
        expect(body.client_id).toBeUndefined();
      } else {
        expect(sent.headers?.Authorization).toBeUndefined();
        expect(body.client_id).toBe(CLIENT_ID);
        expect(body.client_secret).toBe(CLIENT_SECRET);
      }
    });

    it('refreshes with the same client authentication and only the refresh parameters', async () => {
      const p = provider(c.id);
      const { http, calls } = recordingHttp(c.response);
      await requestToken({ http, breakers: new Map(), retries: 0 }, p, {
        grant_type: 'refresh_token',
        refresh_token: 'rt-old',
      });
      const sent = calls[0]!;
      const body = formBody(sent);
      expect(body.grant_type).toBe('refresh_token');
      expect(body.refresh_token).toBe('rt-old');
      expect(body.code).toBeUndefined();
      expect(body.code_verifier).toBeUndefined();
      expect(body.redirect_uri).toBeUndefined();
      expect(Boolean(sent.headers?.Authorization)).toBe(c.clientAuth === 'basic');
      expect(body.client_secret === CLIENT_SECRET).toBe(c.clientAuth === 'post');
    });

    it('reads a realistic token response of this provider', () => {
      const p = provider(c.id);
      const tokens = parseTokenResponse(c.response, p.expiry, NOW);
      expect(tokens.access_token.length).toBeGreaterThan(0);
      expect(tokens.expires_at).toBe(c.expected.expiresAt);
      expect(tokens.token_type).toBe(c.expected.tokenType);
      expect(tokens.granted_scopes).toEqual(c.expected.grantedScopes);
      expect(tokens.refresh_token).toBe(c.expected.refreshToken);
    });
  });

  it('gives Jobber an assumed hour only when its access token is not a JWT', () => {
    const tokens = parseTokenResponse(
      json({ access_token: 'opaque', refresh_token: 'r' }),
      provider('jobber').expiry,
      NOW,
    );
    expect(tokens.expires_at).toBe(NOW + 3600 * 1000);
  });

  it('lets expires_in win over a JWT exp when Jobber sends both', () => {
    const tokens = parseTokenResponse(
      json({ access_token: jwt({ exp: JOBBER_EXP }), expires_in: 60 }),
      provider('jobber').expiry,
      NOW,
    );
    expect(tokens.expires_at).toBe(NOW + 60 * 1000);
  });
});
