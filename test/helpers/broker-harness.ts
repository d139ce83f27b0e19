import { randomBytes } from 'node:crypto';
import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config';
import { Broker, createBroker } from '../../src/create-broker';
import { createLogger } from '../../src/observability/logger';
import { waitForReady } from '../../src/connections/redis-client';
import { TestBrowser, callbackQueryFor, openConnectLink } from './browser';
import { freePort } from './free-port';
import { TEST_INTERNAL_KEY, callApi, requestConnectLink } from './internal-api';

export { TEST_INTERNAL_KEY };
export const TEST_RETURN_ORIGIN = 'https://app.example.com';

export function testKey(): string {
  return randomBytes(32).toString('base64');
}

/** The environment every test broker starts from; a test passes what it changes. */
export function baseEnv(
  publicPort: number,
  overrides: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    SESSION_SECRET: 'a-session-secret-that-is-long-enough-0123456789',
    TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    INTERNAL_API_KEYS: TEST_INTERNAL_KEY,
    ALLOWED_RETURN_URLS: `${TEST_RETURN_ORIGIN}/integrations,http://127.0.0.1:9`,
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    ...overrides,
  };
}

/** Env for one fake-provider-backed provider id: credentials and every endpoint on the fake. */
export function providerEnv(
  id: string,
  fakeUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const p = id.toUpperCase().replace(/-/g, '_');
  return {
    [`${p}_CLIENT_ID`]: `${id}-client`,
    [`${p}_CLIENT_SECRET`]: `${id}-secret`,
    [`${p}_AUTHORIZATION_URL`]: `${fakeUrl}/authorize`,
    [`${p}_TOKEN_URL`]: `${fakeUrl}/token`,
    [`${p}_REVOCATION_URL`]: `${fakeUrl}/revoke`,
    ...extra,
  };
}

export interface TestBroker {
  broker: Broker;
  publicUrl: string;
  internalUrl: string;
  /** Captured log lines (LOG_LEVEL from env, default silent). */
  logs: string[];
  api(
    path: string,
    init?: { method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** POST /internal/connect-sessions; answers the link. */
  connectLink(provider: string, connectionId: string, extra?: Record<string, unknown>): Promise<string>;
  /** The whole browser journey against a fake provider: link, /auth, /callback. */
  connect(provider: string, connectionId: string, options?: ConnectOptions): Promise<ConnectResult>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  returnTo?: string;
  scopes?: string[];
  browser?: TestBrowser;
  /** Extra query on the callback (iss, error …); `code` may be overridden. */
  callbackQuery?: Record<string, string>;
}

export interface ConnectResult {
  browser: TestBrowser;
  authorizeUrl: URL;
  callback: { status: number; location: string | null; body: string };
}

/** An in-process broker on two loopback listeners, on a Redis of the test's choosing. */
export async function startTestBroker(
  env: Record<string, string | undefined>,
  options: { publicPort?: number } = {},
): Promise<TestBroker> {
  const publicPort = options.publicPort ?? (await freePort());
  const fullEnv = { ...baseEnv(publicPort), ...env };
  const config = loadConfig(fullEnv);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const broker = createBroker(config, { logger });
  // Outage tests stop Redis: ioredis reports each reconnect attempt as an 'error' event.
  broker.redis.on('error', () => undefined);
  await waitForReady(broker.redis, 5000);
  const publicServer = createServer(broker.publicApp);
  const internalServer = createServer(broker.internalHandler);
  await listen(publicServer, publicPort);
  await listen(internalServer, 0);
  const publicUrl = `http://127.0.0.1:${publicPort}`;
  const internalUrl = `http://127.0.0.1:${(internalServer.address() as AddressInfo).port}`;

  const api: TestBroker['api'] = (path, init = {}) => callApi(internalUrl, path, init);
  const connectLink: TestBroker['connectLink'] = (provider, connectionId, extra = {}) =>
    requestConnectLink(internalUrl, provider, connectionId, extra);

  const connect: TestBroker['connect'] = async (provider, connectionId, opts = {}) => {
    const browser = opts.browser ?? new TestBrowser();
    const extra: Record<string, unknown> = {};
    if (opts.returnTo) extra.return_to = opts.returnTo;
    if (opts.scopes) extra.scopes = opts.scopes;
    const { authorizeUrl, state } = await openConnectLink(
      browser,
      await connectLink(provider, connectionId, extra),
    );
    const query = callbackQueryFor(connectionId, state, opts.callbackQuery);
    const callback = await browser.get(`${publicUrl}/callback/${provider}?${query}`);
    return {
      browser,
      authorizeUrl,
      callback: { status: callback.status, location: callback.location, body: callback.body },
    };
  };

  return {
    broker,
    publicUrl,
    internalUrl,
    logs,
    api,
    connectLink,
    connect,
    async close() {
      await broker.sweeper.stop();
      await broker.webhooks?.stop();
      publicServer.closeAllConnections();
      internalServer.closeAllConnections();
      await Promise.all([close(publicServer), close(internalServer)]);
      await broker.connections.drain();
      broker.redis.disconnect();
    },
  };
}

/** Rejects when the port cannot be bound (EADDRINUSE), so a clash fails the test at once instead of hanging it. */
function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
