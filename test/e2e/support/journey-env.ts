import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, BrowserContext } from 'playwright-core';
import { TestBroker, startTestBroker } from '../../helpers/broker-harness';
import { FakeProvider } from '../../helpers/fake-provider';
import { freePort } from '../../helpers/free-port';
import { TestRedis } from '../../helpers/redis-server';
import { launchChromium } from './chromium';
import { OidcClient, OidcServer } from './authorization-server';

/** The provider oidc-provider plays, as the broker knows it: data in PROVIDERS_FILE only. */
export const OIDC_PROVIDER_ID = 'acme-id';
export const OIDC_DISPLAY_NAME = 'Acme ID';
/** The same server declared under an issuer it is not: every answer must fail the RFC 9207 check. */
export const WRONG_ISSUER_PROVIDER_ID = 'acme-id-elsewhere';
/** An API-key provider whose verify_url is on a local fake (accepts keys containing "good-key"). */
export const KEY_PROVIDER_ID = 'keyco';
export const KEY_DISPLAY_NAME = 'KeyCo Reports';

/** A journey file's environment and the browser profile of the test under way. */
export interface Journey {
  readonly env: JourneyEnv;
  readonly context: BrowserContext;
}

/**
 * For the describe block it is called in: a JourneyEnv for the file (beforeAll, closed in
 * afterAll) and a fresh browser profile per test, so no cookie of the broker or the authorization
 * server carries over from one journey to the next.
 */
export function useJourney(options: { accessTokenTtl?: number } = {}): Journey {
  let env: JourneyEnv | undefined;
  let context: BrowserContext | undefined;
  beforeAll(async () => {
    env = await startJourneyEnv(options);
  });
  afterAll(async () => {
    await env?.close();
  });
  beforeEach(async () => {
    context = await env!.browser.newContext();
  });
  afterEach(async () => {
    await context?.close();
  });
  return {
    get env() {
      if (!env) throw new Error('useJourney: env is read before its beforeAll has run');
      return env;
    },
    get context() {
      if (!context) throw new Error('useJourney: context is read outside a test');
      return context;
    },
  };
}

export interface JourneyEnv {
  redis: TestRedis;
  oidc: OidcServer;
  /** The broker's registered client at the authorization server. */
  client: OidcClient;
  /** Serves /verify for the API-key provider. */
  fake: FakeProvider;
  broker: TestBroker;
  browser: Browser;
  /** The app's page the browser comes back to: `${appUrl}/app/integrations`. */
  appUrl: string;
  returnTo: string;
  close(): Promise<void>;
}

/**
 * Everything a browser journey needs, started fresh for one test file: a private Redis,
 * oidc-provider in a child process, a fake for API-key checks, the broker (in process) with both
 * providers declared in a PROVIDERS_FILE, a tiny app page to return to, and Chromium.
 */
export async function startJourneyEnv(options: { accessTokenTtl?: number } = {}): Promise<JourneyEnv> {
  const publicPort = await freePort();
  const [redis, fake, app] = await Promise.all([TestRedis.start(), FakeProvider.start(), startAppPage()]);
  const client: OidcClient = {
    client_id: 'oauth-broker-e2e',
    client_secret: randomBytes(24).toString('base64url'),
    redirect_uris: [OIDC_PROVIDER_ID, WRONG_ISSUER_PROVIDER_ID].map(
      (id) => `http://127.0.0.1:${publicPort}/callback/${id}`,
    ),
  };
  const [oidc, browser] = await Promise.all([
    OidcServer.start({ clients: [client], accessTokenTtl: options.accessTokenTtl }),
    launchChromium(),
  ]);

  const dir = mkdtempSync(join(tmpdir(), 'ob-e2e-'));
  const providersFile = join(dir, 'providers.json');
  writeFileSync(
    providersFile,
    JSON.stringify({
      providers: [
        {
          id: OIDC_PROVIDER_ID,
          display_name: OIDC_DISPLAY_NAME,
          authorization_url: oidc.authorizationUrl,
          token_url: oidc.tokenUrl,
          revocation_url: oidc.revocationUrl,
          issuer: oidc.issuer,
          // offline_access is what makes an OpenID Provider issue a refresh token, and it is only
          // honoured with prompt=consent (OpenID Connect Core §11).
          default_scopes: ['openid', 'offline_access', 'profile'],
          authorization_params: { prompt: 'consent' },
          client_auth: 'client_secret_basic',
          pkce: 'S256',
          refresh_token_rotation: true,
          api_base_url: oidc.issuer,
        },
        {
          id: WRONG_ISSUER_PROVIDER_ID,
          extends: OIDC_PROVIDER_ID,
          display_name: 'Acme ID (elsewhere)',
          issuer: 'https://id.elsewhere.example',
        },
        {
          id: KEY_PROVIDER_ID,
          display_name: KEY_DISPLAY_NAME,
          auth_mode: 'api_key',
          api_key: {
            header: 'X-API-KEY',
            prefix: '',
            verify_url: `${fake.url}/verify`,
            verify_method: 'GET',
          },
        },
      ],
    }),
  );

  let broker: TestBroker;
  try {
    broker = await startTestBroker(
      {
        REDIS_URL: redis.url,
        PROVIDERS_FILE: providersFile,
        ACME_ID_CLIENT_ID: client.client_id,
        ACME_ID_CLIENT_SECRET: client.client_secret,
        ACME_ID_ELSEWHERE_CLIENT_ID: client.client_id,
        ACME_ID_ELSEWHERE_CLIENT_SECRET: client.client_secret,
        ALLOWED_RETURN_URLS: `${app.url}/app`,
        // Access tokens live 60 s here: a margin of 10 s keeps a fresh one fresh, and no
        // background refresh runs behind the journeys' backs.
        REFRESH_MARGIN: '10',
        REFRESH_AHEAD: 'false',
        KEEPALIVE_AFTER: '0',
      },
      { publicPort },
    );
  } catch (error) {
    await Promise.all([browser.close(), oidc.close(), fake.close(), redis.close(), closeServer(app.server)]);
    throw error;
  }

  return {
    redis,
    oidc,
    client,
    fake,
    broker,
    browser,
    appUrl: app.url,
    returnTo: `${app.url}/app/integrations`,
    async close() {
      await browser.close().catch(() => undefined);
      await broker.close();
      await Promise.all([oidc.close(), fake.close(), redis.close(), closeServer(app.server)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The app the user comes back to: one page that shows what the broker put in its query. */
async function startAppPage(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    const items = [...url.searchParams.entries()]
      .map(([k, v]) => `<li><b>${escape(k)}</b>: <span id="q-${escape(k)}">${escape(v)}</span></li>`)
      .join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><html><head><title>Integrations</title></head><body><h1>Back in the app</h1><ul>${items}</ul></body></html>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function escape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
