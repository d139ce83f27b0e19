import type { RequestListener } from 'node:http';
import { randomBytes } from 'node:crypto';
import express, { Express, Response } from 'express';
import { DestinationStream } from 'pino';
import { BrokerClient } from '../client';
import { Config } from '../config/config';
import { loadConfig } from '../config/load-config';
import { Broker, createBroker } from '../create-broker';
import { createLogger } from '../observability/logger';
import { BUILT_IN_PROVIDERS } from '../providers/catalogue';
import { loadProviderRegistry } from '../providers/load-registry';
import { ProviderEntry } from '../providers/provider-definition';
import { demoConnectedPage, demoFailedPage, demoStartPage, demoUnavailablePage } from './demo-pages';
import { pageSecurityHeaders } from './page-security';
import { createSandboxAuthorizationServer } from './sandbox-authorization-server';

export interface DemoOptions {
  redisUrl: string;
  publicPort: number;
  internalPort: number;
  /** The host in PUBLIC_URL; default `localhost`. */
  publicHost?: string;
  /** Default `demo:<random>:`, so a run never touches anything else in that Redis. */
  keyPrefix?: string;
  logLevel?: string;
  logDestination?: DestinationStream;
}

export interface Demo {
  config: Config;
  broker: Broker;
  /** The sandbox provider, the demo pages, then the broker's own public app. */
  publicApp: Express;
  /** The internal listener's handler: the token API's fast path in front of the Express app. */
  internalHandler: RequestListener;
  publicUrl: string;
  internalUrl: string;
  internalApiKey: string;
  connectionId: string;
  /** The command that fetches the demo connection's token (with the key when asked). */
  tokenCommand(options?: { withKey?: boolean; forceRefresh?: boolean }): string;
  /** A call of the sandbox API through the proxy: the notes (GET), or a new one (POST). */
  proxyCommand(options?: { withKey?: boolean; post?: boolean }): string;
}

export const DEMO_PROVIDER_ID = 'sandbox';
export const DEMO_CONNECTION_ID = 'demo-user';
const CLIENT_ID = 'oauth-broker-demo';

/**
 * A broker configured for one machine, with secrets generated for this run and the sandbox
 * provider added to the registry as data, like any PROVIDERS_FILE entry. Only the demo builds
 * this: the broker's own composition never mounts the sandbox.
 */
export function createDemo(options: DemoOptions): Demo {
  const publicUrl = `http://${options.publicHost ?? 'localhost'}:${options.publicPort}`;
  const internalUrl = `http://127.0.0.1:${options.internalPort}`;
  const internalApiKey = randomBytes(24).toString('base64url');
  const clientSecret = randomBytes(24).toString('base64url');
  const env: Record<string, string> = {
    PUBLIC_URL: publicUrl,
    HOST: '127.0.0.1',
    PORT: String(options.publicPort),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(options.internalPort),
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: options.keyPrefix ?? `demo:${randomBytes(4).toString('hex')}:`,
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    TOKEN_ENCRYPTION_KEYS: `demo:${randomBytes(32).toString('base64')}`,
    INTERNAL_API_KEYS: internalApiKey,
    ALLOWED_RETURN_URLS: `${publicUrl}/demo`,
    SANDBOX_CLIENT_ID: CLIENT_ID,
    SANDBOX_CLIENT_SECRET: clientSecret,
    LOG_LEVEL: options.logLevel ?? 'warn',
  };
  const config = loadConfig(env);

  // The broker calls the sandbox's token endpoint over loopback; browsers use PUBLIC_URL.
  const backChannel = `http://127.0.0.1:${options.publicPort}/sandbox`;
  const sandbox: ProviderEntry = {
    id: DEMO_PROVIDER_ID,
    display_name: 'Sandbox',
    authorization_url: `${publicUrl}/sandbox/authorize`,
    token_url: `${backChannel}/token`,
    revocation_url: `${backChannel}/revoke`,
    issuer: `${publicUrl}/sandbox`,
    default_scopes: ['profile', 'notes.read', 'notes.write'],
    client_auth: 'client_secret_basic',
    pkce: 'S256',
    refresh_token_rotation: true,
    // The proxy's upstream, reached over loopback like the token endpoint (docs/proxy.md).
    api_base_url: `${backChannel}/api`,
  };
  const registry = loadProviderRegistry(config, [...BUILT_IN_PROVIDERS, sandbox]);
  const logger = createLogger(config.logLevel, options.logDestination);
  const broker = createBroker(config, { logger, registry });
  const client = new BrokerClient({ baseUrl: internalUrl, apiKey: internalApiKey, retries: 1 });

  const tokenCommand: Demo['tokenCommand'] = (o = {}) =>
    `curl -s -H "Authorization: Bearer ${o.withKey ? internalApiKey : '<internal API key>'}" ` +
    `"${internalUrl}/internal/connections/${DEMO_PROVIDER_ID}/${DEMO_CONNECTION_ID}/token${o.forceRefresh ? '?force_refresh=true' : ''}"`;
  const proxyCommand: Demo['proxyCommand'] = (o = {}) =>
    `curl -s -H "Authorization: Bearer ${o.withKey ? internalApiKey : '<internal API key>'}" ` +
    (o.post ? `-H "Content-Type: application/json" -d '{"text":"hello through the proxy"}' ` : '') +
    `"${internalUrl}/internal/proxy/${DEMO_PROVIDER_ID}/${DEMO_CONNECTION_ID}/notes"`;
  const pageContext = {
    connectionId: DEMO_CONNECTION_ID,
    tokenCommand: tokenCommand(),
    proxyCommand: proxyCommand(),
    proxyPostCommand: proxyCommand({ post: true }),
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(
    '/sandbox',
    createSandboxAuthorizationServer({
      issuer: `${publicUrl}/sandbox`,
      clientId: CLIENT_ID,
      clientSecret,
      redirectUri: `${publicUrl}/callback/${DEMO_PROVIDER_ID}`,
    }),
  );

  const demo = express.Router();
  demo.use(pageSecurityHeaders());
  demo.get('/', (_req, res) => sendHtml(res, 200, demoStartPage(pageContext)));
  demo.get('/connect', async (_req, res) => {
    try {
      const session = await client.createConnectSession({
        provider: DEMO_PROVIDER_ID,
        connection_id: DEMO_CONNECTION_ID,
        return_to: `${publicUrl}/demo/done`,
      });
      res.redirect(302, session.url);
    } catch {
      sendHtml(res, 503, demoUnavailablePage());
    }
  });
  demo.get('/done', (req, res) => {
    const error = typeof req.query.error === 'string' ? req.query.error : undefined;
    if (error || req.query.connected !== DEMO_PROVIDER_ID)
      return sendHtml(res, 200, demoFailedPage(error ?? 'unknown'));
    sendHtml(res, 200, demoConnectedPage(pageContext));
  });
  app.use('/demo', demo);
  app.get('/', (_req, res) => res.redirect(302, '/demo'));
  app.use(broker.publicApp);

  return {
    config,
    broker,
    publicApp: app,
    internalHandler: broker.internalHandler,
    publicUrl,
    internalUrl,
    internalApiKey,
    connectionId: DEMO_CONNECTION_ID,
    tokenCommand,
    proxyCommand,
  };
}

function sendHtml(res: Response, status: number, html: string): void {
  res.status(status).type('html').send(html);
}
