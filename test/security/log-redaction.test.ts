import axios from 'axios';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { createLogger } from '../../src/observability/logger';
import { createProviderHttp } from '../../src/oauth/provider-http';
import {
  TEST_INTERNAL_KEY,
  TEST_RETURN_ORIGIN,
  TestBroker,
  providerEnv,
  startTestBroker,
} from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import { callbackUrl, onListener } from '../helpers/flow-steps';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/** A secret no log line may hold: distinctive, so a match is never a coincidence. */
function secret(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

/**
 * Logs (pino) never carry a secret, at any level, on any path: tokens, refresh tokens, client
 * secrets, codes, state, PKCE verifiers, API keys, internal keys, session cookies, connect links,
 * including when a provider fails (network errors, timeouts, error bodies that echo the request).
 * The test drives every path at LOG_LEVEL=trace and searches the captured log for each secret.
 */
describe('log redaction', () => {
  let redis: TestRedis;
  let good: FakeProvider;
  let echo: FakeProvider;
  let slow: FakeProvider;
  let broker: TestBroker;
  const secrets = new Map<string, string>();
  const keep = (name: string, value: string | undefined | null): void => {
    if (value) secrets.set(`${name} #${secrets.size}`, value);
  };

  const clientSecrets: Record<string, string> = {
    JOBBER_CLIENT_SECRET: secret('cs-jobber'),
    BEXIO_CLIENT_SECRET: secret('cs-bexio'),
    BONJORO_CLIENT_SECRET: secret('cs-bonjoro'),
    RESPOND_IO_CLIENT_SECRET: secret('cs-respond'),
  };

  beforeAll(async () => {
    redis = await TestRedis.start();
    good = await FakeProvider.start();
    echo = await FakeProvider.start();
    slow = await FakeProvider.start({ tokenDelayMs: 3000 });
    // A provider that answers errors quoting the request back: its body, its headers.
    echo.onToken((req, res) => {
      const status = req.params.grant_type === 'refresh_token' ? 400 : 500;
      res.status(status).json({
        error: status === 400 ? 'invalid_grant' : 'server_error',
        error_description: req.rawBody,
        echoed_headers: req.headers,
      });
    });
    const closed = `http://127.0.0.1:${await freePort()}`;
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      LOG_LEVEL: 'trace',
      PROVIDER_TIMEOUT: '1',
      ...providerEnv('jobber', good.url),
      ...providerEnv('bexio', echo.url),
      ...providerEnv('bonjoro', closed),
      ...providerEnv('respond-io', slow.url),
      ...clientSecrets,
      PROCESS_STREET_AUTH_MODE: 'api_key',
      PROCESS_STREET_API_KEY_VERIFY_URL: `${good.url}/verify`,
    });
    for (const [name, value] of Object.entries(clientSecrets)) keep(name, value);
    keep('internal key', TEST_INTERNAL_KEY);
  });

  afterAll(async () => {
    await broker.close();
    for (const f of [good, echo, slow]) await f.close();
    await redis.close();
  });

  /** A browser journey up to the callback, recording every secret it sees on the way. */
  async function journey(provider: string, connectionId: string, callbackQuery: Record<string, string> = {}) {
    const browser = new TestBrowser();
    const link = await broker.connectLink(provider, connectionId, { return_to: RETURN_TO });
    keep('connect link token', new URL(link).searchParams.get('session'));
    const auth = await browser.get(onListener(broker, link));
    const authorizeUrl = new URL(auth.location!);
    const state = authorizeUrl.searchParams.get('state')!;
    keep('state', state);
    keep('code_challenge', authorizeUrl.searchParams.get('code_challenge'));
    const code = secret('code');
    keep('code', code);
    const callback = await browser.get(callbackUrl(broker, provider, { code, state, ...callbackQuery }));
    keepCookies(browser);
    return { browser, callback };
  }

  function keepCookies(browser: TestBrowser): void {
    const header = browser.cookieHeader();
    if (!header) return;
    const value = decodeURIComponent(header.split('=')[1]!);
    keep('session cookie', value);
    keep('session id', value.replace(/^s:/, '').split('.')[0]);
    keep('session cookie signature', value.split('.').pop());
  }

  function keepProviderTraffic(): void {
    for (const fake of [good, echo, slow]) {
      for (const r of fake.requests) {
        keep('code_verifier', r.params.code_verifier);
        keep('refresh_token sent', r.params.refresh_token);
        keep('revoked token', r.params.token);
        keep('authorization header', r.headers.authorization as string | undefined);
        keep('x-api-key header', r.headers['x-api-key'] as string | undefined);
      }
      for (const t of fake.issued) {
        keep('access_token', t.access_token);
        keep('refresh_token', t.refresh_token);
      }
    }
  }

  it('drives every path at trace level and finds no secret in any log line', async () => {
    // Connect, read, refresh, refresh refused, delete with revocation.
    expect((await journey('jobber', 'acct-log-ok')).callback.status).toBe(303);
    expect((await broker.api('/internal/connections/jobber/acct-log-ok/token')).status).toBe(200);
    expect(
      (await broker.api('/internal/connections/jobber/acct-log-ok/token?force_refresh=true')).status,
    ).toBe(200);
    good.failNext(1, 400, { error: 'invalid_grant', error_description: 'refresh token revoked' });
    expect(
      (await broker.api('/internal/connections/jobber/acct-log-ok/token?force_refresh=true')).status,
    ).toBe(409);
    expect((await broker.api('/internal/connections/jobber/acct-log-ok', { method: 'DELETE' })).status).toBe(
      204,
    );

    // Import, then delete with revocation of the imported refresh token.
    const imported = { access_token: secret('at-imported'), refresh_token: secret('rt-imported') };
    keep('imported access_token', imported.access_token);
    keep('imported refresh_token', imported.refresh_token);
    expect(
      (
        await broker.api('/internal/connections/jobber/acct-log-import', {
          method: 'PUT',
          body: { ...imported, expires_in: 3600 },
        })
      ).status,
    ).toBe(201);
    expect(
      (await broker.api('/internal/connections/jobber/acct-log-import', { method: 'DELETE' })).status,
    ).toBe(204);

    // A malformed import body holding a secret.
    const inBadBody = secret('at-in-malformed-body');
    keep('token in malformed body', inBadBody);
    expect(
      (
        await broker.api('/internal/connections/jobber/acct-log-bad', {
          method: 'PUT',
          body: `{"access_token": "${inBadBody}",`,
        })
      ).status,
    ).toBe(400);

    // Code exchange failures: an error body quoting the request, a refused connection, a timeout.
    const echoed = await journey('bexio', 'acct-log-echo');
    expect(new URL(echoed.callback.location!).searchParams.get('error')).toBe('provider_unavailable');
    const refusedConnection = await journey('bonjoro', 'acct-log-refused');
    expect(new URL(refusedConnection.callback.location!).searchParams.get('error')).toBe(
      'provider_unavailable',
    );
    const timedOut = await journey('respond-io', 'acct-log-timeout');
    expect(new URL(timedOut.callback.location!).searchParams.get('error')).toBe('provider_unavailable');
    // The provider's own error on the error= path.
    await journey('jobber', 'acct-log-denied', { error: 'access_denied', error_description: secret('desc') });

    // Refresh failures in the foreground and the background, on each failing provider.
    for (const provider of ['bexio', 'bonjoro', 'respond-io']) {
      const tokens = { access_token: secret(`at-${provider}`), refresh_token: secret(`rt-${provider}`) };
      keep('imported access_token', tokens.access_token);
      keep('imported refresh_token', tokens.refresh_token);
      const path = `/internal/connections/${provider}/acct-log-refresh`;
      expect((await broker.api(path, { method: 'PUT', body: { ...tokens, expires_in: 1 } })).status).toBe(
        201,
      );
      expect((await broker.api(`${path}/token?force_refresh=true`)).status).toBeGreaterThanOrEqual(400);
      await broker.broker.connections.refreshInBackground(
        broker.broker.registry.get(provider)!,
        'acct-log-refresh',
      );
      expect((await broker.api(path, { method: 'DELETE' })).status).toBe(204);
    }

    // The API-key form: accepted, refused, provider broken, form forged.
    for (const [label, status] of [
      ['good-key', 303],
      ['bad-key', 400],
      ['broken-key', 502],
    ] as const) {
      const browser = new TestBrowser();
      const link = await broker.connectLink('process-street', `acct-log-${label}`, { return_to: RETURN_TO });
      keep('connect link token', new URL(link).searchParams.get('session'));
      const form = await browser.get(onListener(broker, link));
      const flow = /name="flow" value="([^"]+)"/.exec(form.body)![1]!;
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
      keep('form flow id', flow);
      keep('csrf token', csrf);
      const apiKey = secret(label);
      keep('api key', apiKey);
      const posted = await browser.postForm(`${broker.publicUrl}/auth/process-street`, {
        flow,
        csrf,
        api_key: apiKey,
      });
      expect(posted.status).toBe(status);
      keepCookies(browser);
      const forged = await new TestBrowser().postForm(`${broker.publicUrl}/auth/process-street`, {
        flow,
        csrf,
        api_key: apiKey,
      });
      expect(forged.status).toBe(400);
    }
    expect((await broker.api('/internal/connections/process-street/acct-log-good-key/token')).status).toBe(
      200,
    );

    // Failed internal authentications, with keys that look like secrets.
    for (const header of [
      `Bearer ${secret('wrong-internal-key')}`,
      `Basic ${secret('basic-credentials')}`,
      secret('bare-key'),
    ]) {
      keep('presented internal credentials', header);
      const res = await fetch(`${broker.internalUrl}/internal/providers`, {
        headers: { authorization: header },
      });
      expect(res.status).toBe(401);
    }

    await broker.broker.connections.drain();
    keepProviderTraffic();

    // The paths were driven, and logged: otherwise an empty log would pass.
    const log = broker.logs.join('');
    for (const message of [
      'connect started',
      'connected',
      'code exchange failed',
      'callback failed',
      'refresh failed',
      'revocation sent',
      'revocation failed',
      'api key connected',
      '"status":401',
    ]) {
      expect(log).toContain(message);
    }
    expect(echo.tokenRequests.length).toBeGreaterThan(0);
    expect(secrets.size).toBeGreaterThan(40);

    const leaks = [...secrets].filter(([, value]) => log.includes(value)).map(([name]) => name);
    expect(leaks).toEqual([]);
  });

  it('keeps axios errors, with their request config, out of a log line however they are logged', async () => {
    const lines: string[] = [];
    const logger = createLogger(
      'trace',
      new Writable({ write: (chunk, _enc, cb) => void (lines.push(String(chunk)), cb()) }),
    );
    const body = `code=${secret('axios-code')}&client_secret=${secret('axios-client-secret')}&code_verifier=${secret('axios-verifier')}`;
    const bearer = `Bearer ${secret('axios-bearer')}`;
    const closed = `http://127.0.0.1:${await freePort()}/token`;

    let axiosError: unknown;
    try {
      await axios.post(closed, body, {
        headers: { Authorization: bearer, 'Content-Type': 'application/x-www-form-urlencoded' },
        proxy: false,
      });
    } catch (error) {
      axiosError = error;
    }
    // The raw axios error does carry the request: that is what must never be logged.
    expect(inspect(axiosError, { depth: 6 })).toContain(body);

    logger.error({ err: axiosError }, 'as err');
    logger.error({ error: axiosError }, 'as error');
    logger.error(axiosError as Error, 'as the first argument');
    const log = lines.join('');
    expect(lines).toHaveLength(3);
    const parts = [...body.split('&').map((p) => p.split('=')[1]!), bearer];
    expect(parts.filter((part) => log.includes(part))).toEqual([]);

    // The provider HTTP door throws errors that carry nothing of the request.
    const http = createProviderHttp({ timeoutMs: 1000 });
    let thrown: unknown;
    try {
      await http({ method: 'POST', url: closed, headers: { Authorization: bearer }, body });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    const shown = inspect(thrown, { depth: 6, showHidden: true });
    expect(parts.filter((part) => shown.includes(part))).toEqual([]);
  });
});
