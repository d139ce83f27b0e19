import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import {
  TEST_RETURN_ORIGIN,
  TestBroker,
  baseEnv,
  providerEnv,
  startTestBroker,
} from '../helpers/broker-harness';
import { ensureBuilt } from '../helpers/broker-process';

/**
 * Several apps of one provider (docs/providers.md, `extends`): an entry that extends
 * bexio starts from bexio's definition, takes its own id, credentials (`<ID>_CLIENT_ID` /
 * `_CLIENT_SECRET`) and redirect URI, and changes only the fields it names; the base's
 * variables do not carry over. Chains work; an unknown base or a cycle stops start-up.
 */
const BEXIO_ISSUER = 'https://auth.bexio.com/realms/bexio';
const MAIN = join(resolve(__dirname, '../..'), 'dist', 'main.js');

function basicAuthOf(header: unknown): string {
  return Buffer.from(String(header).replace(/^Basic /, ''), 'base64').toString('utf8');
}

/** Starts `node dist/main.js` and answers how it ended (it is expected to refuse to start). */
function startUp(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const full: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [k, v] of Object.entries({
    ...baseEnv(9),
    PORT: '0',
    INTERNAL_PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  }))
    if (v !== undefined) full[k] = v;
  const child = spawn(process.execPath, [MAIN], { env: full, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((done) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    }),
  );
}

describe('extends: another OAuth app of a provider, from PROVIDERS_FILE', () => {
  let redis: TestRedis;
  let base: FakeProvider;
  let eu: FakeProvider;
  let broker: TestBroker;
  let dir: string;

  const file = (name: string, providers: unknown[]): string => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify({ providers }));
    return path;
  };

  beforeAll(async () => {
    await ensureBuilt();
    redis = await TestRedis.start();
    base = await FakeProvider.start();
    eu = await FakeProvider.start();
    dir = mkdtempSync(join(tmpdir(), 'ob-extends-'));
    const providersFile = file('providers.json', [
      {
        id: 'bexio-eu',
        extends: 'bexio',
        display_name: 'bexio EU',
        authorization_url: `${eu.url}/authorize`,
        token_url: `${eu.url}/token`,
        revocation_url: `${eu.url}/revoke`,
      },
      { id: 'bexio-eu-b', extends: 'bexio-eu', display_name: 'bexio EU (B)' },
      { id: 'bexio-ch', extends: 'bexio' },
    ]);
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      PROVIDERS_FILE: providersFile,
      // The base app: its own credentials, endpoints, scopes and issuer; none of it carries over.
      ...providerEnv('bexio', base.url, { BEXIO_SCOPES: 'base-only-scope' }),
      BEXIO_EU_CLIENT_ID: 'bexio-eu-client',
      BEXIO_EU_CLIENT_SECRET: 'bexio-eu-secret',
      BEXIO_EU_B_CLIENT_ID: 'bexio-eu-b-client',
      BEXIO_EU_B_CLIENT_SECRET: 'bexio-eu-b-secret',
    });
  }, 180_000);

  afterAll(async () => {
    await broker?.close();
    await base?.close();
    await eu?.close();
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('connects bexio-eu end to end with its own endpoints, credentials and redirect URI', async () => {
    const result = await broker.connect('bexio-eu', 'eu-1', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
      callbackQuery: { iss: BEXIO_ISSUER },
    });
    const q = result.authorizeUrl.searchParams;
    expect(result.authorizeUrl.origin + result.authorizeUrl.pathname).toBe(`${eu.url}/authorize`);
    expect(q.get('client_id')).toBe('bexio-eu-client');
    expect(q.get('redirect_uri')).toBe(`${broker.publicUrl}/callback/bexio-eu`);
    // bexio's default scopes: BEXIO_SCOPES is the base app's variable.
    expect(q.get('scope')).toBe('openid offline_access');
    expect(q.get('code_challenge_method')).toBe('S256');

    expect(result.callback.status).toBe(303);
    const back = new URL(result.callback.location!);
    expect(back.searchParams.get('connected')).toBe('bexio-eu');
    expect(back.searchParams.get('connection_id')).toBe('eu-1');

    expect(base.tokenRequests).toHaveLength(0);
    expect(eu.tokenRequests).toHaveLength(1);
    const exchange = eu.tokenRequests[0]!;
    expect(exchange.params.redirect_uri).toBe(`${broker.publicUrl}/callback/bexio-eu`);
    // bexio's client_secret_basic, with bexio-eu's own credentials.
    expect(basicAuthOf(exchange.headers.authorization)).toBe('bexio-eu-client:bexio-eu-secret');

    const token = await broker.api('/internal/connections/bexio-eu/eu-1/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(eu.issued[0]!.access_token);
    expect((await broker.api('/internal/connections/bexio-eu/eu-1')).body.provider).toBe('bexio-eu');
  });

  it('keeps what it does not name from bexio: the issuer check (RFC 9207), rotation, keep-alive', async () => {
    const wrong = await broker.connect('bexio-eu', 'eu-wrong-iss', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
      callbackQuery: { iss: 'https://elsewhere.example' },
    });
    expect(wrong.callback.status).toBe(303);
    expect(new URL(wrong.callback.location!).searchParams.get('error')).toBe('invalid_issuer');

    const listed = (await broker.api('/internal/providers')).body.providers as Array<Record<string, unknown>>;
    const bexio = listed.find((p) => p.id === 'bexio')!;
    const bexioEu = listed.find((p) => p.id === 'bexio-eu')!;
    expect(bexioEu).toMatchObject({
      display_name: 'bexio EU',
      redirect_uri: `${broker.publicUrl}/callback/bexio-eu`,
      issuer: BEXIO_ISSUER,
      refresh_token_rotation: true,
      keepalive_after: bexio.keepalive_after,
      scopes: ['openid', 'offline_access'],
    });
    // BEXIO_AUTHORIZATION_URL turned the base's issuer off; that does not reach bexio-eu either.
    expect(bexio).toMatchObject({ issuer: null, scopes: ['base-only-scope'] });
  });

  it('leaves the base app as it was', async () => {
    const result = await broker.connect('bexio', 'base-1', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
    });
    expect(result.authorizeUrl.origin).toBe(base.url);
    expect(result.authorizeUrl.searchParams.get('client_id')).toBe('bexio-client');
    expect(result.callback.status).toBe(303);
    expect(base.tokenRequests).toHaveLength(1);
    expect(basicAuthOf(base.tokenRequests[0]!.headers.authorization)).toBe('bexio-client:bexio-secret');
  });

  it('follows a chain of extends', async () => {
    const before = eu.tokenRequests.length;
    const result = await broker.connect('bexio-eu-b', 'eu-b-1', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
      callbackQuery: { iss: BEXIO_ISSUER },
    });
    expect(result.authorizeUrl.origin + result.authorizeUrl.pathname).toBe(`${eu.url}/authorize`);
    expect(result.authorizeUrl.searchParams.get('client_id')).toBe('bexio-eu-b-client');
    expect(result.authorizeUrl.searchParams.get('redirect_uri')).toBe(
      `${broker.publicUrl}/callback/bexio-eu-b`,
    );
    expect(result.callback.status).toBe(303);
    expect(eu.tokenRequests).toHaveLength(before + 1);
    expect(basicAuthOf(eu.tokenRequests[before]!.headers.authorization)).toBe(
      'bexio-eu-b-client:bexio-eu-b-secret',
    );
  });

  it("does not enable an app on its base's credentials", async () => {
    const res = await broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'bexio-ch', connection_id: 'ch-1' },
    });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('provider_not_enabled');
    expect(res.body.detail).toContain('BEXIO_CH_CLIENT_ID');
  });

  it('refuses to start on an unknown base, naming the entry and the field', async () => {
    const path = file('unknown-base.json', [{ id: 'bexio-us', extends: 'no-such-provider' }]);
    const run = await startUp({ PROVIDERS_FILE: path });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/bexio-us/);
    expect(run.stderr).toMatch(/extends/);
    expect(run.stderr).toMatch(/no-such-provider/);
  });

  it('refuses to start on a cycle of extends', async () => {
    const path = file('cycle.json', [
      { id: 'app-a', extends: 'app-b' },
      { id: 'app-b', extends: 'app-c' },
      { id: 'app-c', extends: 'app-a' },
    ]);
    const run = await startUp({ PROVIDERS_FILE: path });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/cycle/);
    expect(run.stderr).toMatch(/app-a/);
  });
});
