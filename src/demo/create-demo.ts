import type { RequestListener } from 'node:http';
import { randomBytes } from 'node:crypto';
import express, { Express, Response } from 'express';
import { DestinationStream } from 'pino';
import { BrokerClient, BrokerProblemError } from '@oauth-broker/client';
import { Config } from '../config/config';
import { loadConfig } from '../config/load-config';
import { Broker, createBroker } from '../create-broker';
import { createLogger } from '../observability/logger';
import { BUILT_IN_PROVIDERS } from '../providers/catalogue';
import { loadProviderRegistry } from '../providers/load-registry';
import { ProviderEntry } from '../providers/provider-definition';
import { demoConnectedPage, demoFailedPage, demoStartPage, demoUnavailablePage } from './demo-pages';
import { DemoSetting, SettingSource, resolveDemoSettings } from './demo-settings';
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
  /**
   * The user's environment (`.env` included): INTERNAL_API_KEYS, ALLOWED_RETURN_URLS,
   * SESSION_SECRET and TOKEN_ENCRYPTION_KEYS are used where set, generated where not.
   */
  env?: Record<string, string | undefined>;
  /** Where publicPort and internalPort came from, for the printed summary; default `default`. */
  portSources?: { public: SettingSource; internal: SettingSource };
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
  /** The first of INTERNAL_API_KEYS: the user's when they set it, else generated. */
  internalApiKey: string;
  /** Whether internalApiKey is the user's own (then the demo never prints it). */
  keyFromUser: boolean;
  /** Each variable the demo ran with and where it came from. */
  settings: DemoSetting[];
  connectionId: string;
  /** The command that fetches the demo connection's token (with the key when asked). */
  tokenCommand(options?: { withKey?: boolean; forceRefresh?: boolean }): string;
}

export const DEMO_PROVIDER_ID = 'sandbox';
export const DEMO_CONNECTION_ID = 'demo-user';
/** The demo app's own user, kept beside the connection (docs/end-users-and-tags.md). */
export const DEMO_END_USER = { id: 'demo-user', display_name: 'Demo User' } as const;
const CLIENT_ID = 'oauth-broker-demo';

/**
 * A broker configured for one machine, with secrets generated for this run and the sandbox
 * provider added to the registry as data, like any PROVIDERS_FILE entry. Only the demo builds
 * this: the broker's own composition never mounts the sandbox.
 */
export function createDemo(options: DemoOptions): Demo {
  const publicUrl = `http://${options.publicHost ?? 'localhost'}:${options.publicPort}`;
  const internalUrl = `http://127.0.0.1:${options.internalPort}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const settings = resolveDemoSettings({
    userEnv: options.env ?? {},
    publicUrl,
    publicPort: options.publicPort,
    internalPort: options.internalPort,
    portSources: options.portSources ?? { public: 'default', internal: 'default' },
    redisUrl: options.redisUrl,
    keyPrefix: options.keyPrefix ?? `demo:${randomBytes(4).toString('hex')}:`,
    logLevel: options.logLevel ?? 'warn',
  });
  const { internalApiKey, keyFromUser } = settings;
  const config = loadConfig({
    ...settings.env,
    SANDBOX_CLIENT_ID: CLIENT_ID,
    SANDBOX_CLIENT_SECRET: clientSecret,
  });

  // The broker calls the sandbox's token endpoint over loopback; browsers use PUBLIC_URL.
  const backChannel = `http://127.0.0.1:${options.publicPort}/sandbox`;
  const sandbox: ProviderEntry = {
    id: DEMO_PROVIDER_ID,
    display_name: 'Sandbox',
    authorization_url: `${publicUrl}/sandbox/authorize`,
    token_url: `${backChannel}/token`,
    revocation_url: `${backChannel}/revoke`,
    issuer: `${publicUrl}/sandbox`,
    default_scopes: ['profile', 'notes.read'],
    client_auth: 'client_secret_basic',
    pkce: 'S256',
    refresh_token_rotation: true,
    api_base_url: `${publicUrl}/sandbox/api`,
  };
  const registry = loadProviderRegistry(config, [...BUILT_IN_PROVIDERS, sandbox]);
  const logger = createLogger(config.logLevel, options.logDestination);
  const broker = createBroker(config, { logger, registry });
  const client = new BrokerClient({ baseUrl: internalUrl, apiKey: internalApiKey, retries: 1 });

  const tokenCommand: Demo['tokenCommand'] = (o = {}) =>
    tokenCommandFor(
      DEMO_CONNECTION_ID,
      o.withKey && !keyFromUser ? internalApiKey : undefined,
      o.forceRefresh,
    );
  const tokenCommandFor = (connectionId: string, key?: string, forceRefresh?: boolean): string =>
    `curl -s -H "Authorization: Bearer ${key ?? '<internal API key>'}" ` +
    `"${internalUrl}/internal/connections/${DEMO_PROVIDER_ID}/${encodeURIComponent(connectionId)}/token${forceRefresh ? '?force_refresh=true' : ''}"`;
  const pageContext = { connectionId: DEMO_CONNECTION_ID, tokenCommand: tokenCommand() };

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
  // `?connection_id=` connects another id than demo-user (the broker checks its alphabet).
  demo.get('/connect', async (req, res) => {
    const asked = typeof req.query.connection_id === 'string' ? req.query.connection_id : undefined;
    try {
      const session = await client.createConnectSession({
        provider: DEMO_PROVIDER_ID,
        connection_id: asked || DEMO_CONNECTION_ID,
        return_to: `${publicUrl}/demo/done`,
        end_user: { ...DEMO_END_USER },
        tags: { source: 'demo' },
      });
      res.redirect(302, session.url);
    } catch (error) {
      if (error instanceof BrokerProblemError && error.code === 'invalid_request')
        return sendHtml(res, 400, demoFailedPage('invalid_request'));
      sendHtml(res, 503, demoUnavailablePage());
    }
  });
  // The page names the connection the broker says it stored (any connect session may return
  // here, not only the start page's), after asking the broker that it exists.
  demo.get('/done', async (req, res) => {
    const error = typeof req.query.error === 'string' ? req.query.error : undefined;
    const connectionId = typeof req.query.connection_id === 'string' ? req.query.connection_id : undefined;
    if (error || req.query.connected !== DEMO_PROVIDER_ID || !connectionId)
      return sendHtml(res, 200, demoFailedPage(error ?? 'unknown'));
    try {
      await client.getConnection(DEMO_PROVIDER_ID, connectionId);
    } catch (failure) {
      if (failure instanceof BrokerProblemError && failure.status < 500)
        return sendHtml(res, 200, demoFailedPage(failure.code));
      return sendHtml(res, 503, demoUnavailablePage());
    }
    sendHtml(res, 200, demoConnectedPage({ connectionId, tokenCommand: tokenCommandFor(connectionId) }));
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
    keyFromUser,
    settings: settings.used,
    connectionId: DEMO_CONNECTION_ID,
    tokenCommand,
  };
}

function sendHtml(res: Response, status: number, html: string): void {
  res.status(status).type('html').send(html);
}
