import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config/config-error';
import { loadProviderRegistry } from '../../../src/providers/load-registry';
import { ProviderRegistry } from '../../../src/providers/provider-registry';

const PUBLIC_URL = 'https://connect.example.com';
const BEXIO_ISSUER = 'https://auth.bexio.com/realms/bexio';

let dir: string;
let fileCount = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'providers-file-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** PROVIDERS_FILE content: an object is written as JSON, a string as is. */
  file?: unknown;
  allowInsecure?: boolean;
  keepaliveAfter?: number;
}

function load(options: LoadOptions = {}): ProviderRegistry {
  let providersFile: string | undefined;
  if (options.file !== undefined) {
    fileCount += 1;
    providersFile = join(dir, `providers-${fileCount}.json`);
    writeFileSync(
      providersFile,
      typeof options.file === 'string' ? options.file : JSON.stringify(options.file),
    );
  }
  return loadProviderRegistry({
    providersFile,
    publicUrl: PUBLIC_URL,
    allowInsecureProviderUrls: options.allowInsecure ?? false,
    keepaliveAfterSeconds: options.keepaliveAfter,
    env: options.env ?? {},
  });
}

/** The problems of the ConfigError a load stops with; fails the test when it does not stop. */
function problemsOf(options: LoadOptions): string[] {
  try {
    load(options);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the registry to refuse this configuration');
}

const ACME = {
  id: 'acme',
  authorization_url: 'https://acme.example/oauth/authorize',
  token_url: 'https://acme.example/oauth/token',
};
const ACME_CREDENTIALS = { ACME_CLIENT_ID: 'acme-id', ACME_CLIENT_SECRET: 'acme-secret' };

describe('PROVIDERS_FILE', () => {
  it('adds a provider that needs only id, authorization_url and token_url, every other field defaulted', () => {
    const acme = load({ file: { providers: [ACME] }, env: ACME_CREDENTIALS }).get('acme')!;
    expect(acme).toMatchObject({
      id: 'acme',
      display_name: 'acme',
      auth_mode: 'oauth2',
      authorization_url: ACME.authorization_url,
      token_url: ACME.token_url,
      default_scopes: [],
      scopes: [],
      scope_separator: ' ',
      authorization_params: {},
      token_request: 'form',
      client_auth: 'client_secret_basic',
      pkce: 'S256',
      expiry: { from: 'expires_in' },
      refresh_token_rotation: false,
      enabled: true,
      client_id: 'acme-id',
      redirect_uri: `${PUBLIC_URL}/callback/acme`,
      env_prefix: 'ACME',
    });
    expect(acme.revocation_url).toBeUndefined();
    expect(acme.issuer).toBeUndefined();
  });

  it('keeps every field of a complete entry in the contract field names', () => {
    const entry = {
      id: 'acme-full',
      display_name: 'Acme',
      auth_mode: 'oauth2',
      authorization_url: 'https://acme.example/oauth/authorize',
      token_url: 'https://acme.example/oauth/token',
      revocation_url: 'https://acme.example/oauth/revoke',
      issuer: 'https://acme.example',
      default_scopes: ['read', 'write'],
      scope_separator: ',',
      authorization_params: { prompt: 'consent' },
      token_request: 'json',
      client_auth: 'client_secret_post',
      pkce: 'none',
      expiry: { from: 'jwt_exp' },
      refresh_token_rotation: true,
      keepalive_after: 3600,
      api_base_url: 'https://api.acme.example',
      docs_url: 'https://developer.acme.example/oauth',
    };
    const { id: _id, ...fields } = entry;
    const acme = load({ file: { providers: [entry] } }).get('acme-full')!;
    expect(acme).toMatchObject(fields);
    expect(acme.scopes).toEqual(['read', 'write']);
    expect(acme.keepalive_seconds).toBe(3600);
    expect(acme.enabled).toBe(false);
  });

  it('overrides the fields a built-in entry names and keeps the others', () => {
    const bexio = load({
      file: {
        providers: [
          { id: 'bexio', display_name: 'bexio (ours)', default_scopes: ['openid', 'contact_show'] },
        ],
      },
    }).get('bexio')!;
    expect(bexio.display_name).toBe('bexio (ours)');
    expect(bexio.scopes).toEqual(['openid', 'contact_show']);
    expect(bexio.token_url).toBe('https://auth.bexio.com/realms/bexio/protocol/openid-connect/token');
    expect(bexio.issuer).toBe(BEXIO_ISSUER);
  });

  it('replaces an object field whole instead of merging it into the built-in one', () => {
    const registry = load({
      file: {
        providers: [
          { id: 'jobber', expiry: { from: 'expires_in' } },
          {
            id: 'respond-io',
            api_key: { header: 'X-Token', verify_url: 'https://api.respond.io/v2/space/user' },
          },
        ],
      },
    });
    // The built-in Jobber expiry also has default_seconds; the override has none.
    expect(registry.get('jobber')!.expiry).toEqual({ from: 'expires_in' });
    // The built-in respond.io key prefix is "Bearer "; the override's block starts from the block
    // defaults (a header other than Authorization: no prefix).
    expect(registry.get('respond-io')!.api_key).toEqual({
      header: 'X-Token',
      prefix: '',
      verify_method: 'GET',
      verify_url: 'https://api.respond.io/v2/space/user',
    });
  });

  it('replaces authorization_params whole through an extends chain', () => {
    const registry = load({
      file: {
        providers: [
          { ...ACME, authorization_params: { prompt: 'consent', access_type: 'offline' } },
          { id: 'acme-eu', extends: 'acme', authorization_params: { region: 'eu' } },
        ],
      },
    });
    expect(registry.get('acme')!.authorization_params).toEqual({ prompt: 'consent', access_type: 'offline' });
    expect(registry.get('acme-eu')!.authorization_params).toEqual({ region: 'eu' });
  });

  it('removes a built-in issuer or revocation endpoint named null', () => {
    const bexio = load({ file: { providers: [{ id: 'bexio', issuer: null, revocation_url: null }] } }).get(
      'bexio',
    )!;
    expect(bexio.issuer).toBeUndefined();
    expect(bexio.revocation_url).toBeUndefined();
  });

  it('refuses an unknown field, naming the entry and the field', () => {
    const problems = problemsOf({ file: { providers: [{ ...ACME, colour: 'blue' }] } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('PROVIDERS_FILE');
    expect(problems[0]).toContain('provider "acme" (entry 1)');
    expect(problems[0]).toContain('unknown field "colour"');
  });

  it.each([
    ['token_url', 'not a url'],
    ['authorization_url', 'ftp://acme.example/authorize'],
    ['revocation_url', 'acme.example/revoke'],
    ['docs_url', 'javascript:alert(1)'],
  ])('refuses a bad URL in %s, naming the entry and the field', (field, value) => {
    const problems = problemsOf({ file: { providers: [ACME, { ...ACME, id: 'acme-two', [field]: value }] } });
    expect(
      problems.some((p) => p.includes('provider "acme-two" (entry 2)') && p.includes(`field "${field}"`)),
    ).toBe(true);
  });

  it('refuses a plain-http endpoint that is not loopback unless ALLOW_INSECURE_PROVIDER_URLS says so', () => {
    const entry = { ...ACME, token_url: 'http://acme.example/oauth/token' };
    const problems = problemsOf({ file: { providers: [entry] } });
    expect(problems).toEqual([
      expect.stringMatching(/acme.*field "token_url".*http:\/\/ is allowed only for loopback/),
    ]);
    expect(load({ file: { providers: [entry] }, allowInsecure: true }).get('acme')!.token_url).toBe(
      'http://acme.example/oauth/token',
    );
    expect(
      load({ file: { providers: [{ ...ACME, token_url: 'http://127.0.0.1:9999/token' }] } }).get('acme')!
        .token_url,
    ).toBe('http://127.0.0.1:9999/token');
  });

  it('refuses a duplicate id, naming the second entry and the field', () => {
    const problems = problemsOf({ file: { providers: [ACME, { ...ACME, display_name: 'Acme again' }] } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('provider "acme" (entry 2)');
    expect(problems[0]).toContain('field "id"');
    expect(problems[0]).toContain('duplicate');
  });

  it.each(['Acme', 'acme_crm', '-acme', 'acme-', '', 'a'.repeat(65)])(
    'refuses the bad id %p, naming the field',
    (id) => {
      const problems = problemsOf({ file: { providers: [{ ...ACME, id }] } });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('(entry 1)');
      expect(problems[0]).toContain('field "id"');
    },
  );

  it('refuses a new oauth2 provider without its endpoints', () => {
    const problems = problemsOf({ file: { providers: [{ id: 'acme' }] } });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('provider "acme": field "authorization_url": missing'),
        expect.stringContaining('provider "acme": field "token_url": missing'),
      ]),
    );
  });

  it('reports every problem of the file at once', () => {
    const problems = problemsOf({
      file: {
        providers: [{ ...ACME, colour: 'blue' }, { ...ACME, id: 'beta', token_url: 'nope' }, { id: 'Gamma' }],
      },
    });
    expect(problems).toHaveLength(3);
  });

  it('refuses a file that is not JSON or not {"providers": [...]}', () => {
    expect(problemsOf({ file: '{"providers": [' })).toEqual([
      expect.stringMatching(/^PROVIDERS_FILE: .* is not valid JSON$/),
    ]);
    expect(problemsOf({ file: { provider: [] } })).toEqual([expect.stringContaining('{"providers": [ … ]}')]);
    expect(problemsOf({ file: [ACME] })).toEqual([expect.stringContaining('{"providers": [ … ]}')]);
  });

  it('refuses a file that cannot be read, naming the variable', () => {
    expect(() =>
      loadProviderRegistry({
        providersFile: join(dir, 'missing.json'),
        publicUrl: PUBLIC_URL,
        allowInsecureProviderUrls: false,
        keepaliveAfterSeconds: undefined,
        env: {},
      }),
    ).toThrow(/PROVIDERS_FILE: .*missing\.json cannot be read/);
  });
});

describe('PROVIDERS_FILE extends', () => {
  const CHAIN = {
    providers: [
      { id: 'bexio-eu', extends: 'bexio', display_name: 'bexio EU' },
      { id: 'bexio-eu-sandbox', extends: 'bexio-eu', token_url: 'https://sandbox.bexio.example/token' },
    ],
  };

  it('starts from the base definition and changes only the named fields, along a chain', () => {
    const registry = load({ file: CHAIN });
    const sandbox = registry.get('bexio-eu-sandbox')!;
    expect(sandbox.display_name).toBe('bexio EU');
    expect(sandbox.authorization_url).toBe(
      'https://auth.bexio.com/realms/bexio/protocol/openid-connect/auth',
    );
    expect(sandbox.token_url).toBe('https://sandbox.bexio.example/token');
    expect(sandbox.issuer).toBe(BEXIO_ISSUER);
    expect(sandbox.scopes).toEqual(['openid', 'offline_access']);
    expect(sandbox.keepalive_after).toBe(604_800);
    // The bases are left as they were.
    expect(registry.get('bexio-eu')!.token_url).toBe(
      'https://auth.bexio.com/realms/bexio/protocol/openid-connect/token',
    );
    expect(registry.get('bexio')!.display_name).toBe('bexio');
  });

  it('gives each derived provider its own id, redirect URI, variable prefix and credentials', () => {
    const registry = load({
      file: CHAIN,
      env: { BEXIO_EU_CLIENT_ID: 'eu-id', BEXIO_EU_CLIENT_SECRET: 'eu-secret' },
    });
    const eu = registry.get('bexio-eu')!;
    expect(eu.id).toBe('bexio-eu');
    expect(eu.redirect_uri).toBe(`${PUBLIC_URL}/callback/bexio-eu`);
    expect(eu.env_prefix).toBe('BEXIO_EU');
    expect(eu.enabled).toBe(true);
    expect(eu.client_id).toBe('eu-id');
    expect(eu.client_secret).toBe('eu-secret');
    expect(registry.get('bexio')!.enabled).toBe(false);
    expect(registry.get('bexio-eu-sandbox')!.enabled).toBe(false);
  });

  it("does not carry the base's variables over to the derived provider", () => {
    const registry = load({
      file: CHAIN,
      env: {
        BEXIO_CLIENT_ID: 'base-id',
        BEXIO_CLIENT_SECRET: 'base-secret',
        BEXIO_TOKEN_URL: 'https://base.example/token',
        BEXIO_SCOPES: 'openid contact_show',
        BEXIO_ISSUER: '',
        BEXIO_AUTH_MODE: 'api_key',
        BEXIO_EU_SCOPES: 'openid,kb_invoice_show',
      },
    });
    const base = registry.get('bexio')!;
    expect(base).toMatchObject({
      enabled: true,
      token_url: 'https://base.example/token',
      scopes: ['openid', 'contact_show'],
      auth_mode: 'api_key',
    });
    expect(base.issuer).toBeUndefined();
    const eu = registry.get('bexio-eu')!;
    expect(eu.enabled).toBe(false);
    expect(eu.client_id).toBeUndefined();
    expect(eu.auth_mode).toBe('oauth2');
    expect(eu.token_url).toBe('https://auth.bexio.com/realms/bexio/protocol/openid-connect/token');
    expect(eu.issuer).toBe(BEXIO_ISSUER);
    expect(eu.scopes).toEqual(['openid', 'kb_invoice_show']);
  });

  it('builds on a built-in as PROVIDERS_FILE overrides it', () => {
    const registry = load({
      file: {
        providers: [
          { id: 'jobber', display_name: 'Jobber (ours)' },
          { id: 'jobber-two', extends: 'jobber' },
        ],
      },
    });
    expect(registry.get('jobber-two')!.display_name).toBe('Jobber (ours)');
    expect(registry.get('jobber-two')!.client_auth).toBe('client_secret_post');
  });

  it('refuses an unknown base, naming the entry and the field', () => {
    const problems = problemsOf({ file: { providers: [{ id: 'acme-eu', extends: 'acme' }] } });
    expect(problems).toEqual([
      expect.stringMatching(/provider "acme-eu": field "extends": unknown provider "acme"/),
    ]);
  });

  it('refuses a cycle of extends', () => {
    const problems = problemsOf({
      file: {
        providers: [
          { ...ACME, id: 'one', extends: 'two' },
          { ...ACME, id: 'two', extends: 'three' },
          { ...ACME, id: 'three', extends: 'one' },
        ],
      },
    });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.includes('field "extends"') && p.includes('cycle'))).toBe(true);
  });
});

describe('<PROVIDER>_* variables', () => {
  it.each([
    [
      'space separated',
      'openid contact_show  kb_invoice_show',
      ['openid', 'contact_show', 'kb_invoice_show'],
    ],
    ['comma separated', 'openid,contact_show,kb_invoice_show', ['openid', 'contact_show', 'kb_invoice_show']],
    ['mixed', ' openid, contact_show kb_invoice_show ', ['openid', 'contact_show', 'kb_invoice_show']],
    ['empty', '', []],
  ])('_SCOPES %s replaces the default scopes', (_how, value, expected) => {
    expect(load({ env: { BEXIO_SCOPES: value } }).get('bexio')!.scopes).toEqual(expected);
  });

  it('_SCOPES keeps the provider separator for sending', () => {
    const ps = load({ env: { PROCESS_STREET_SCOPES: 'read write admin' } }).get('process-street')!;
    expect(ps.scopes).toEqual(['read', 'write', 'admin']);
    expect(ps.scope_separator).toBe(',');
  });

  it('_ISSUER replaces the issuer, and an empty one turns the iss check off', () => {
    expect(load({ env: { BEXIO_ISSUER: 'https://other.example/realm' } }).get('bexio')!.issuer).toBe(
      'https://other.example/realm',
    );
    expect(load({ env: { BEXIO_ISSUER: '' } }).get('bexio')!.issuer).toBeUndefined();
    expect(load({ env: { JOBBER_ISSUER: 'https://api.getjobber.com' } }).get('jobber')!.issuer).toBe(
      'https://api.getjobber.com',
    );
  });

  it('_AUTHORIZATION_URL without _ISSUER drops the catalogue issuer; with _ISSUER keeps that one', () => {
    const moved = load({ env: { BEXIO_AUTHORIZATION_URL: 'https://sso.example/auth' } }).get('bexio')!;
    expect(moved.authorization_url).toBe('https://sso.example/auth');
    expect(moved.issuer).toBeUndefined();
    const movedWithIssuer = load({
      env: { BEXIO_AUTHORIZATION_URL: 'https://sso.example/auth', BEXIO_ISSUER: 'https://sso.example' },
    }).get('bexio')!;
    expect(movedWithIssuer.issuer).toBe('https://sso.example');
    // Only the authorization server decides the issuer: a token URL of its own keeps it.
    expect(load({ env: { BEXIO_TOKEN_URL: 'https://proxy.example/token' } }).get('bexio')!.issuer).toBe(
      BEXIO_ISSUER,
    );
  });

  it('_TOKEN_URL and _REVOCATION_URL replace the endpoints', () => {
    const bexio = load({
      env: {
        BEXIO_TOKEN_URL: 'https://proxy.example/token',
        BEXIO_REVOCATION_URL: 'https://proxy.example/revoke',
      },
    }).get('bexio')!;
    expect(bexio.token_url).toBe('https://proxy.example/token');
    expect(bexio.revocation_url).toBe('https://proxy.example/revoke');
  });

  it('refuses a bad endpoint variable, naming the variable', () => {
    const problems = problemsOf({
      env: { JOBBER_TOKEN_URL: 'not a url', BEXIO_AUTHORIZATION_URL: 'http://sso.example/auth' },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('JOBBER_TOKEN_URL: not a URL'),
        expect.stringContaining('BEXIO_AUTHORIZATION_URL: http://'),
      ]),
    );
    expect(problems.join('\n')).not.toContain('not a url');
  });

  it('_AUTH_MODE switches a built-in to api_key, enabled without client credentials', () => {
    const ps = load({ env: { PROCESS_STREET_AUTH_MODE: 'api_key' } }).get('process-street')!;
    expect(ps.auth_mode).toBe('api_key');
    expect(ps.enabled).toBe(true);
    expect(ps.api_key).toMatchObject({ header: 'X-API-KEY', prefix: '' });
    const bonjoro = load({ env: { BONJORO_AUTH_MODE: 'api_key' } }).get('bonjoro')!;
    expect(bonjoro.auth_mode).toBe('api_key');
    expect(bonjoro.api_key).toBeUndefined();
  });

  it('_API_KEY_VERIFY_URL on a provider without an api_key block keeps Authorization: Bearer (docs/providers.md)', () => {
    const bonjoro = load({
      env: { BONJORO_AUTH_MODE: 'api_key', BONJORO_API_KEY_VERIFY_URL: 'https://api.bonjoro.example/me' },
    }).get('bonjoro')!;
    expect(bonjoro.api_key).toEqual({
      header: 'Authorization',
      prefix: 'Bearer ',
      verify_url: 'https://api.bonjoro.example/me',
      verify_method: 'GET',
    });
  });

  it.each([
    [{ verify_url: 'https://acme.example/me' }, 'Authorization', 'Bearer '],
    [{ header: 'authorization' }, 'authorization', 'Bearer '],
    [{ header: 'X-Key' }, 'X-Key', ''],
    [{ header: 'Authorization', prefix: 'Token ' }, 'Authorization', 'Token '],
    [{ header: 'Authorization', prefix: '' }, 'Authorization', ''],
  ])('an api_key block %j sends the key in %s with prefix %j', (apiKey, header, prefix) => {
    const registry = load({ file: { providers: [{ ...ACME, auth_mode: 'api_key', api_key: apiKey }] } });
    expect(registry.get('acme')!.api_key).toMatchObject({ header, prefix });
  });

  it('_AUTH_MODE switches an api_key provider of the file back to oauth2', () => {
    const registry = load({
      file: { providers: [{ ...ACME, auth_mode: 'api_key', api_key: { header: 'X-Key' } }] },
      env: { ACME_AUTH_MODE: 'oauth2' },
    });
    expect(registry.get('acme')!.auth_mode).toBe('oauth2');
    expect(registry.get('acme')!.enabled).toBe(false);
  });

  it('refuses an _AUTH_MODE that is neither oauth2 nor api_key', () => {
    expect(problemsOf({ env: { BEXIO_AUTH_MODE: 'apikey' } })).toEqual([
      expect.stringContaining('BEXIO_AUTH_MODE: must be oauth2 or api_key'),
    ]);
  });

  it('_API_KEY_VERIFY_URL sets the key check and keeps the declared header', () => {
    const ps = load({
      env: {
        PROCESS_STREET_AUTH_MODE: 'api_key',
        PROCESS_STREET_API_KEY_VERIFY_URL: 'https://public-api.process.st/api/v1.1/testAuth',
      },
    }).get('process-street')!;
    expect(ps.api_key).toEqual({
      header: 'X-API-KEY',
      prefix: '',
      verify_method: 'GET',
      verify_url: 'https://public-api.process.st/api/v1.1/testAuth',
    });
  });

  it.each([
    ['both', { JOBBER_CLIENT_ID: 'id', JOBBER_CLIENT_SECRET: 'secret' }, true],
    ['only the id', { JOBBER_CLIENT_ID: 'id' }, false],
    ['only the secret', { JOBBER_CLIENT_SECRET: 'secret' }, false],
    ['a blank secret', { JOBBER_CLIENT_ID: 'id', JOBBER_CLIENT_SECRET: '   ' }, false],
    ['neither', {}, false],
  ])('enables an oauth2 provider with %s of client id and secret: %p', (_what, env, enabled) => {
    expect(load({ env }).get('jobber')!.enabled).toBe(enabled);
  });

  it('enables an api_key provider without client credentials', () => {
    const registry = load({
      file: {
        providers: [
          {
            id: 'keyed',
            auth_mode: 'api_key',
            api_key: { header: 'X-Key', verify_url: 'https://keyed.example/me' },
          },
        ],
      },
    });
    expect(registry.get('keyed')!.enabled).toBe(true);
    expect(registry.enabled().map((p) => p.id)).toEqual(['keyed']);
  });

  it('takes KEEPALIVE_AFTER over every provider, else each keepalive_after, else a week', () => {
    expect(load().get('bexio')!.keepalive_seconds).toBe(604_800);
    expect(load().get('jobber')!.keepalive_seconds).toBe(604_800);
    expect(
      load({ file: { providers: [{ id: 'bexio', keepalive_after: 86_400 }] } }).get('bexio')!
        .keepalive_seconds,
    ).toBe(86_400);
    expect(load({ keepaliveAfter: 0 }).get('bexio')!.keepalive_seconds).toBe(0);
  });
});
