import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { TEST_INTERNAL_KEY, baseEnv, providerEnv } from '../helpers/broker-harness';
import { ApiAnswer, BrokerProcess, ensureBuilt } from '../helpers/broker-process';
import { PageResponse, TestBrowser } from '../helpers/browser';
import {
  RedisProcess,
  TlsMaterial,
  connectionCounter,
  dumpRedis,
  idleKeepAlive,
  makeTlsMaterial,
  runBrokerToExit,
  runCommand,
} from '../helpers/contract-process';
import { FakeProvider } from '../helpers/fake-provider';
import { connectionFootprint } from '../helpers/flow-steps';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';

/**
 * CONTRACT.md checked from outside, statement by statement: the built broker started as an
 * operator starts it (`node dist/main.js`, only the contract's variables, its defaults for the
 * rest), driven over HTTP like a browser and the app's services would, with what reaches the
 * provider and what sits in Redis looked at directly. Behaviours other files already check on a
 * real process (Redis outage and recovery, Sentinel, Cluster, the in-flight drain on several
 * processes) are not repeated here.
 */

const ROOT = join(__dirname, '..', '..');
const ISSUER = 'https://id.example.test/realms/acme';
const SECOND_KEY = 'second-internal-key-abcdef0123456789';
const RETURN_TO = 'http://127.0.0.1:9/done';
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The contract's variables only: anything else the test harness sets is taken away again. */
const CONTRACT_DEFAULTS = { LOG_LEVEL: undefined, RATE_LIMIT_PER_MINUTE: undefined };

function sha256(value: string, encoding: 'hex' | 'base64url' = 'hex'): string {
  return createHash('sha256').update(value).digest(encoding);
}

function expectProblem(res: ApiAnswer, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  for (const field of ['type', 'title', 'detail']) expect(typeof res.body[field]).toBe('string');
  expect(res.body.status).toBe(status);
}

function cookieAttributes(setCookie: string): string[] {
  return setCookie
    .split(';')
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

interface Flow {
  state: string;
  authorizeUrl: URL;
  auth: PageResponse;
  link: string;
}

/** Asks `broker` for a link and opens it in `browser` on the broker's own listener. */
async function openFlow(
  broker: BrokerProcess,
  browser: TestBrowser,
  provider: string,
  connectionId: string,
  extra: Record<string, unknown> = {},
): Promise<Flow> {
  const link = await broker.connectLink(provider, connectionId, extra);
  const url = new URL(link);
  const auth = await browser.get(`${broker.publicUrl}${url.pathname}${url.search}`);
  if (auth.status !== 302 || !auth.location)
    throw new Error(`/auth answered ${auth.status}: ${auth.body.slice(0, 200)}`);
  const authorizeUrl = new URL(auth.location);
  return { state: authorizeUrl.searchParams.get('state') ?? '', authorizeUrl, auth, link };
}

function callback(
  broker: BrokerProcess,
  browser: TestBrowser,
  provider: string,
  query: Record<string, string>,
): Promise<PageResponse> {
  return browser.get(`${broker.publicUrl}/callback/${provider}?${new URLSearchParams(query).toString()}`);
}

describe('CONTRACT.md, checked from outside on the built broker (node dist/main.js)', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let slowFake: FakeProvider;
  let b1: BrokerProcess;
  /** b1's environment, for the CLI ("with the same environment as the broker"). */
  let env1: Record<string, string | undefined>;
  let b2: BrokerProcess;
  const others: BrokerProcess[] = [];
  const redisProcesses: RedisProcess[] = [];
  let tls: TlsMaterial | undefined;
  let redisClient: Redis;

  beforeAll(async () => {
    // `npm run build`, once, unless dist/ is already newer than src/.
    await ensureBuilt();
    redis = await TestRedis.start();
    redisClient = redis.client();
    fake = await FakeProvider.start();
    slowFake = await FakeProvider.start();
    const b1Port = await freePort();
    env1 = {
      ...(baseEnv(b1Port) as Record<string, string>),
      ...CONTRACT_DEFAULTS,
      REDIS_URL: redis.url,
      INTERNAL_API_KEYS: `${TEST_INTERNAL_KEY},${SECOND_KEY}`,
      SHUTDOWN_TIMEOUT: '60',
      ...providerEnv('jobber', fake.url),
      ...providerEnv('process-street', fake.url),
      ...providerEnv('bexio', fake.url, {
        BEXIO_ISSUER: ISSUER,
        BEXIO_SCOPES: 'openid,contact_show offline_access',
      }),
    };
    [b1, b2] = await Promise.all([
      BrokerProcess.start(env1, { publicPort: b1Port }),
      // Another tenant on the same Redis, with a short link life, an https PUBLIC_URL and a
      // short shutdown.
      BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: 'tenant2:',
        // Behind a proxy that serves the broker under a path (trailing slash and all).
        PUBLIC_URL: 'https://connect2.example.test/oauth/',
        CONNECT_SESSION_TTL: '1',
        SHUTDOWN_TIMEOUT: '1',
        PROVIDER_TIMEOUT: '30',
        ...providerEnv('jobber', slowFake.url),
      }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([b1, b2, ...others].filter(Boolean).map((b) => b.stop('SIGKILL')));
    redisClient?.disconnect();
    await Promise.all(redisProcesses.map((r) => r.close()));
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
    await fake?.close();
    await slowFake?.close();
    await redis?.close();
  });

  describe('processes and listeners', () => {
    it('serves /healthz on PORT and /readyz and /metrics on INTERNAL_PORT, each where HOST and INTERNAL_HOST say', async () => {
      expect((await fetch(`${b1.publicUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${b1.internalUrl}/readyz`)).status).toBe(200);
      const metrics = await fetch(`${b1.internalUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    });

    it('answers 404 on the public listener for /internal/*, /readyz and /metrics, as for any unknown path', async () => {
      const auth = { authorization: `Bearer ${TEST_INTERNAL_KEY}` };
      const unknown = await fetch(`${b1.publicUrl}/no-such-path-here`, { headers: auth });
      expect(unknown.status).toBe(404);
      for (const path of [
        '/internal/providers',
        '/internal/connections',
        '/internal/openapi.json',
        '/readyz',
        '/metrics',
      ]) {
        const res = await fetch(`${b1.publicUrl}${path}`, { headers: auth });
        expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({
          path,
          status: 404,
          type: unknown.headers.get('content-type'),
        });
      }
      const post = await fetch(`${b1.publicUrl}/internal/connect-sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'jobber', connection_id: 'x' }),
      });
      expect(post.status).toBe(404);
    });

    it('takes every key of INTERNAL_API_KEYS, and answers 401 unauthorized without a key or with a wrong one', async () => {
      for (const key of [TEST_INTERNAL_KEY, SECOND_KEY]) {
        expect(
          (await b1.api('/internal/providers', { headers: { authorization: `Bearer ${key}` } })).status,
        ).toBe(200);
      }
      expectProblem(
        await b1.api('/internal/providers', {
          headers: { authorization: 'Bearer not-a-key-of-this-broker' },
        }),
        401,
        'unauthorized',
      );
      const none = await fetch(`${b1.internalUrl}/internal/connections/jobber/x/token`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { code: string }).code).toBe('unauthorized');
    });

    it('listens on 0.0.0.0:3000 (public) and 127.0.0.1:3001 (internal) when HOST, PORT, INTERNAL_HOST and INTERNAL_PORT are unset', async () => {
      const free = [await canListen(3000, '0.0.0.0'), await canListen(3001, '127.0.0.1')];
      if (!free.every(Boolean)) {
        console.log('skipped the default-listener check: port 3000 or 3001 is in use on this machine');
        return;
      }
      const broker = await BrokerProcess.start(
        {
          ...CONTRACT_DEFAULTS,
          REDIS_URL: redis.url,
          PUBLIC_URL: 'http://127.0.0.1:3000',
          HOST: undefined,
          PORT: undefined,
          INTERNAL_HOST: undefined,
          INTERNAL_PORT: undefined,
        },
        { publicPort: 3000, internalPort: 3001 },
      );
      others.push(broker);
      try {
        expect((await fetch('http://127.0.0.1:3000/healthz')).status).toBe(200);
        expect((await fetch('http://127.0.0.1:3001/readyz')).status).toBe(200);
        const external = Object.values(networkInterfaces())
          .flat()
          .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
        if (external) {
          // Public on every interface; internal on loopback only.
          expect((await fetch(`http://${external}:3000/healthz`)).status).toBe(200);
          expect(await portBusy(3001, external)).toBe(false);
        } else {
          console.log('no non-loopback IPv4 address: checked the default ports on loopback only');
        }
      } finally {
        await broker.stop('SIGKILL');
      }
    });
  });

  describe('configuration', () => {
    const goodSecret = 'a-session-secret-that-is-long-enough-0123456789';
    const goodKeys = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

    it('stops start-up on bad configuration before connecting anywhere, one line per problem naming the variable, never a secret, exit non-zero', async () => {
      const redisStandIn = await connectionCounter();
      const secrets = {
        session: 'too-short-session-SECRET-1',
        key: Buffer.from('only-sixteen-byt').toString('base64'),
        redisPassword: 'redis-PASSWORD-never-printed',
        clientSecret: 'jobber-client-SECRET-never-printed',
      };
      try {
        const run = await runBrokerToExit({
          PUBLIC_URL: 'connect.example.com',
          REDIS_URL: `redis://:${secrets.redisPassword}@127.0.0.1:${redisStandIn.port}`,
          SESSION_SECRET: secrets.session,
          TOKEN_ENCRYPTION_KEYS: `k1:${secrets.key}`,
          CONNECT_SESSION_TTL: '0',
          JOBBER_CLIENT_ID: 'jobber-client',
          JOBBER_CLIENT_SECRET: secrets.clientSecret,
        });
        expect(run.code).not.toBe(0);
        expect(run.code).not.toBeNull();
        const lines = run.stderr.split('\n');
        const problems: Array<[string, RegExp]> = [
          ['PUBLIC_URL', /not a url/i],
          ['SESSION_SECRET', /short|at least 32/i],
          ['TOKEN_ENCRYPTION_KEYS', /base64.*32 bytes/i],
          ['INTERNAL_API_KEYS', /missing/i],
          ['CONNECT_SESSION_TTL', /1.*86400/],
        ];
        for (const [variable, what] of problems) {
          const named = lines.filter((l) => new RegExp(`\\b${variable}\\b`).test(l));
          expect({ variable, lines: named.length }).toEqual({ variable, lines: 1 });
          expect(named[0]).toMatch(what);
        }
        const output = run.stdout + run.stderr;
        for (const [name, value] of Object.entries(secrets))
          expect({ name, printed: output.includes(value) }).toEqual({ name, printed: false });
        expect(redisStandIn.count()).toBe(0);
      } finally {
        await redisStandIn.close();
      }
    });

    it('stops start-up on a bad provider endpoint and a second SESSION_SECRET that is too short, naming each variable', async () => {
      const redisStandIn = await connectionCounter();
      try {
        const providerRun = await runBrokerToExit({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: `redis://127.0.0.1:${redisStandIn.port}`,
          ...providerEnv('jobber', fake.url, { JOBBER_TOKEN_URL: 'not a url at all' }),
          ...providerEnv('process-street', fake.url, {
            PROCESS_STREET_AUTHORIZATION_URL: 'http://auth.example.test/authorize',
          }),
        });
        expect(providerRun.code).not.toBe(0);
        expect(providerRun.stderr).toMatch(/JOBBER_TOKEN_URL/);
        expect(providerRun.stderr).toMatch(/PROCESS_STREET_AUTHORIZATION_URL/);
        expect(providerRun.stdout + providerRun.stderr).not.toContain('jobber-secret');

        const secondShort = 'short-SECRET-2';
        const rotationRun = await runBrokerToExit({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: `redis://127.0.0.1:${redisStandIn.port}`,
          SESSION_SECRET: `${goodSecret},${secondShort}`,
          TOKEN_ENCRYPTION_KEYS: `${goodKeys},k2:not-base64-!!`,
          CONNECT_SESSION_TTL: '86401',
        });
        expect(rotationRun.code).not.toBe(0);
        const lines = rotationRun.stderr.split('\n');
        expect(lines.filter((l) => /\bSESSION_SECRET\b/.test(l))).toHaveLength(1);
        expect(lines.filter((l) => /\bTOKEN_ENCRYPTION_KEYS\b/.test(l))).toHaveLength(1);
        expect(lines.filter((l) => /\bCONNECT_SESSION_TTL\b/.test(l))).toHaveLength(1);
        for (const value of [goodSecret, secondShort, goodKeys.slice(3), 'not-base64-!!']) {
          expect(rotationRun.stdout + rotationRun.stderr).not.toContain(value);
        }
        expect(redisStandIn.count()).toBe(0);
      } finally {
        await redisStandIn.close();
      }
    });

    it('stops start-up on a bad PROVIDERS_FILE with one line per problem naming the entry and the field, whatever else is wrong in it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ob-providers-'));
      try {
        const env = (file: string): Record<string, string> => ({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: 'redis://127.0.0.1:9',
          PROVIDERS_FILE: join(dir, file),
        });
        writeFileSync(
          join(dir, 'bad.json'),
          JSON.stringify({
            providers: [
              {
                id: 'acme',
                authorization_url: 'https://acme.example/a',
                token_url: 'not a url',
                colour: 'red',
              },
              {
                id: 'acme',
                authorization_url: 'https://acme.example/a',
                token_url: 'https://acme.example/t',
              },
              { id: 'beta', extends: 'nope' },
            ],
          }),
        );
        writeFileSync(join(dir, 'broken.json'), '{"providers": [');
        const bad = await runBrokerToExit(env('bad.json'));
        expect(bad.code).not.toBe(0);
        const lines = bad.stderr.split('\n').filter((l) => l.includes('PROVIDERS_FILE'));
        const expected: RegExp[] = [
          /"acme".*entry 1.*"token_url"/,
          /"acme".*entry 1.*unknown field "colour"/,
          /"acme".*entry 2.*"id".*duplicate/,
          /"beta".*"extends"/,
        ];
        for (const line of expected)
          expect({ line: String(line), found: lines.filter((l) => line.test(l)).length }).toEqual({
            line: String(line),
            found: 1,
          });
        expect(lines).toHaveLength(expected.length);
        expect(bad.stderr).not.toMatch(/\n\s+at /);

        for (const [file, what] of [
          ['broken.json', /not valid JSON/],
          ['missing.json', /cannot be read/],
        ] as const) {
          const run = await runBrokerToExit(env(file));
          expect(run.code).not.toBe(0);
          expect(run.stderr).toMatch(new RegExp(`PROVIDERS_FILE.*${what.source}`));
          expect(run.stderr).not.toMatch(/\n\s+at /);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads a .env file in its working directory, the real environment winning over it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ob-dotenv-'));
      try {
        const port = await freePort();
        writeFileSync(
          join(dir, '.env'),
          [
            `SESSION_SECRET=${goodSecret}`,
            `TOKEN_ENCRYPTION_KEYS=${goodKeys}`,
            'CONNECT_SESSION_TTL=77',
            'PUBLIC_URL=https://from-dotenv.example.test',
            `REDIS_URL=${redis.url}`,
            '',
          ].join('\n'),
        );
        const broker = await BrokerProcess.start(
          {
            ...CONTRACT_DEFAULTS,
            SESSION_SECRET: undefined,
            TOKEN_ENCRYPTION_KEYS: undefined,
            REDIS_URL: undefined,
            PUBLIC_URL: `http://127.0.0.1:${port}`,
            ...providerEnv('jobber', fake.url),
          },
          { publicPort: port, cwd: dir },
        );
        others.push(broker);
        const before = Date.now();
        const res = await broker.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: 'jobber', connection_id: 'dotenv-1' },
        });
        expect(res.status).toBe(201);
        expect(res.body.url.startsWith(`http://127.0.0.1:${port}/auth/jobber?session=`)).toBe(true);
        const ttl = Date.parse(res.body.expires_at) - before;
        expect(ttl).toBeGreaterThan(76_000);
        expect(ttl).toBeLessThan(79_000);
        await broker.stop('SIGKILL');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('provider ids', () => {
    it('answers 404 provider_not_enabled naming <PROVIDER>_CLIENT_ID and _CLIENT_SECRET for a built-in without credentials, on the internal API', async () => {
      for (const [id, prefix] of [
        ['bonjoro', 'BONJORO'],
        ['respond-io', 'RESPOND_IO'],
      ]) {
        const session = await b1.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: id, connection_id: 'x' },
        });
        expectProblem(session, 404, 'provider_not_enabled');
        expect(session.body.detail).toContain(`${prefix}_CLIENT_ID`);
        expect(session.body.detail).toContain(`${prefix}_CLIENT_SECRET`);
        expectProblem(await b1.api(`/internal/connections/${id}/x/token`), 404, 'provider_not_enabled');
        expectProblem(await b1.api(`/internal/connections/${id}/x`), 404, 'provider_not_enabled');
      }
      expectProblem(
        await b1.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: 'acme', connection_id: 'x' },
        }),
        404,
        'provider_not_found',
      );
      expectProblem(await b1.api('/internal/connections/acme/x/token'), 404, 'provider_not_found');
    });

    it('answers 404 pages on /auth and /callback that say which: unknown, or not enabled with the variables that enable it', async () => {
      const browser = new TestBrowser();
      for (const path of ['/auth/respond-io?session=abc', '/callback/respond-io?code=c&state=s']) {
        const page = await browser.get(`${b1.publicUrl}${path}`);
        expect(page.status).toBe(404);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.body).toContain('RESPOND_IO_CLIENT_ID');
        expect(page.body).toContain('RESPOND_IO_CLIENT_SECRET');
      }
      const unknown = await browser.get(`${b1.publicUrl}/auth/acme?session=abc`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toContain('acme');
      expect(unknown.body).not.toContain('_CLIENT_ID');
    });

    it('lists the enabled providers with their scopes and redirect URIs, and no secret', async () => {
      const res = await b1.api('/internal/providers');
      expect(res.status).toBe(200);
      const byId = Object.fromEntries(
        (res.body.providers as Array<Record<string, unknown>>).map((p) => [p.id, p]),
      );
      expect(Object.keys(byId).sort()).toEqual(['bexio', 'jobber', 'process-street']);
      for (const id of ['bexio', 'jobber', 'process-street'])
        expect(byId[id]!.redirect_uri).toBe(`${b1.publicUrl}/callback/${id}`);
      expect(byId.bexio!.scopes).toEqual(['openid', 'contact_show', 'offline_access']);
      expect(byId['process-street']!.scopes).toEqual(['read', 'write']);
      expect(JSON.stringify(res.body)).not.toMatch(/-secret/);
    });
  });

  describe('connect flow', () => {
    it('answers 201 with a PUBLIC_URL link holding a fresh ≥128-bit token and expires_at CONNECT_SESSION_TTL (600 s) ahead; Redis holds only its SHA-256', async () => {
      const before = Date.now();
      const first = await b1.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'link-1' },
      });
      const after = Date.now();
      const second = await b1.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'link-1' },
      });
      expect([first.status, second.status]).toEqual([201, 201]);
      const tokens = [first, second].map((res) => {
        const m = /^(.+)\/auth\/jobber\?session=([^&]+)$/.exec(res.body.url as string);
        expect(m?.[1]).toBe(b1.publicUrl);
        return m![2]!;
      });
      for (const token of tokens) {
        expect(token).toMatch(BASE64URL);
        expect(token.length).toBeGreaterThanOrEqual(22);
      }
      expect(tokens[0]).not.toBe(tokens[1]);
      expect(first.body.expires_at).toMatch(ISO_8601);
      const expires = Date.parse(first.body.expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + 600_000 - 100);
      expect(expires).toBeLessThanOrEqual(after + 600_000 + 100);

      const dump = [...(await dumpRedis(redisClient)).entries()].map(([k, v]) => `${k} ${v}`).join('\n');
      for (const token of tokens) {
        expect(dump).not.toContain(token);
        expect(dump.includes(sha256(token)) || dump.includes(sha256(token, 'base64url'))).toBe(true);
      }
    });

    it('redirects once to the authorization URL with response_type, client_id, redirect_uri, state, code_challenge and S256; the link then answers 400, as a missing or unknown one does', async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(b1, browser, 'jobber', 'acct-params');
      const q = flow.authorizeUrl.searchParams;
      expect(`${flow.authorizeUrl.origin}${flow.authorizeUrl.pathname}`).toBe(`${fake.url}/authorize`);
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe('jobber-client');
      expect(q.get('redirect_uri')).toBe(`${b1.publicUrl}/callback/jobber`);
      expect(flow.state).toMatch(BASE64URL);
      expect(flow.state.length).toBeGreaterThanOrEqual(22);
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('code_challenge_method')).toBe('S256');
      // Jobber takes no scope parameter (its scopes live in the app's settings).
      expect(q.has('scope')).toBe(false);

      const url = new URL(flow.link);
      const again = await new TestBrowser().get(`${b1.publicUrl}${url.pathname}${url.search}`);
      expect(again.status).toBe(400);
      expect(again.headers.get('content-type')).toMatch(/^text\/html/);
      expect(again.body).toMatch(/link/i);
      for (const path of [
        '/auth/jobber',
        '/auth/jobber?session=',
        `/auth/jobber?session=${'A'.repeat(43)}`,
      ]) {
        const page = await new TestBrowser().get(`${b1.publicUrl}${path}`);
        expect({ path, status: page.status }).toEqual({ path, status: 400 });
      }

      // The callback exchanges the code with the verifier whose S256 is the challenge, at the same redirect_uri.
      const done = await callback(b1, browser, 'jobber', { code: 'code-params', state: flow.state });
      expect(done.status).toBe(200);
      const exchange = fake.tokenRequests.find((r) => r.params.code === 'code-params')!;
      expect(exchange.params.grant_type).toBe('authorization_code');
      expect(exchange.params.redirect_uri).toBe(`${b1.publicUrl}/callback/jobber`);
      expect(sha256(exchange.params.code_verifier ?? '', 'base64url')).toBe(q.get('code_challenge'));
    });

    it('sets the session cookie HttpOnly, SameSite=Lax, Path=/, without Secure under an http PUBLIC_URL and with it under an https one (with a path)', async () => {
      const flow = await openFlow(b1, new TestBrowser(), 'jobber', 'acct-cookie');
      expect(flow.auth.setCookies).toHaveLength(1);
      const plain = cookieAttributes(flow.auth.setCookies[0]!);
      expect(plain).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/']));
      expect(plain).not.toContain('secure');

      const link = await b2.connectLink('jobber', 'acct-cookie');
      expect(link.startsWith('https://connect2.example.test/oauth/auth/jobber?session=')).toBe(true);
      // The proxy strips /oauth before the listener.
      const auth = await new TestBrowser().get(`${b2.publicUrl}/auth/jobber${new URL(link).search}`);
      expect(auth.status).toBe(302);
      expect(new URL(auth.location!).searchParams.get('redirect_uri')).toBe(
        'https://connect2.example.test/oauth/callback/jobber',
      );
      const secure = cookieAttributes(auth.setCookies[0]!);
      expect(secure).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/', 'secure']));
    });

    it('honours CONNECT_SESSION_TTL=1: expires_at one second ahead, and the link answers 400 once that has passed', async () => {
      const before = Date.now();
      const res = await b2.api('/internal/connect-sessions', {
        method: 'POST',
        body: { provider: 'jobber', connection_id: 'ttl-1' },
      });
      const after = Date.now();
      expect(res.status).toBe(201);
      const expires = Date.parse(res.body.expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + 1000 - 100);
      expect(expires).toBeLessThanOrEqual(after + 1000 + 100);
      await new Promise((r) => setTimeout(r, 2200));
      const url = new URL(res.body.url as string);
      const late = await new TestBrowser().get(`${b2.publicUrl}/auth/jobber${url.search}`);
      expect(late.status).toBe(400);
    });

    it("keeps a link opened under another provider's /auth/ path unused: 400 there, then 302 under its own", async () => {
      const link = new URL(await b1.connectLink('jobber', 'acct-mixed'));
      const browser = new TestBrowser();
      const wrong = await browser.get(`${b1.publicUrl}/auth/process-street${link.search}`);
      expect(wrong.status).toBe(400);
      expect(fake.requests.filter((r) => r.path === '/authorize')).toHaveLength(0);
      const right = await browser.get(`${b1.publicUrl}/auth/jobber${link.search}`);
      expect(right.status).toBe(302);
      expect(right.location!.startsWith(`${fake.url}/authorize?`)).toBe(true);
    });

    it("sends a connect session's scopes instead of the defaults, joined with the provider's scope_separator, and answers them as the token's scopes", async () => {
      const defaults = await openFlow(b1, new TestBrowser(), 'process-street', 'acct-scopes-default');
      expect(defaults.authorizeUrl.searchParams.get('scope')).toBe('read,write');

      const browser = new TestBrowser();
      const chosen = await openFlow(b1, browser, 'process-street', 'acct-scopes', {
        scopes: ['files:read', 'users'],
      });
      expect(chosen.authorizeUrl.searchParams.get('scope')).toBe('files:read,users');
      expect(
        (await callback(b1, browser, 'process-street', { code: 'code-scopes', state: chosen.state })).status,
      ).toBe(200);
      const token = await b1.api('/internal/connections/process-street/acct-scopes/token');
      expect(token.body.scopes).toEqual(['files:read', 'users']);

      // BEXIO_SCOPES (comma and space separated) replaces bexio's defaults, sent space separated.
      const bexio = await openFlow(b1, new TestBrowser(), 'bexio', 'acct-bexio-scopes');
      expect(bexio.authorizeUrl.searchParams.get('scope')).toBe('openid contact_show offline_access');
    });

    it('finishes several flows under way in one browser, in any order', async () => {
      const browser = new TestBrowser();
      const a = await openFlow(b1, browser, 'jobber', 'multi-a');
      const b = await openFlow(b1, browser, 'process-street', 'multi-b', { return_to: RETURN_TO });
      const second = await callback(b1, browser, 'process-street', { code: 'code-multi-b', state: b.state });
      expect(second.status).toBe(303);
      const first = await callback(b1, browser, 'jobber', { code: 'code-multi-a', state: a.state });
      expect(first.status).toBe(200);
      expect((await b1.api('/internal/connections/jobber/multi-a')).status).toBe(200);
      expect((await b1.api('/internal/connections/process-street/multi-b')).status).toBe(200);
    });

    it('answers 303 to return_to with connected and connection_id added to the query it already has (kept as it was), before its fragment', async () => {
      const id = 'a.B_9:x@y-z';
      const returnTo = `${RETURN_TO}?tab=a%20b&flag#top`;
      const browser = new TestBrowser();
      const flow = await openFlow(b1, browser, 'jobber', id, { return_to: returnTo });
      const done = await callback(b1, browser, 'jobber', { code: 'code-return', state: flow.state });
      expect(done.status).toBe(303);
      const location = done.location!;
      expect(location.startsWith(`${RETURN_TO}?tab=a%20b&flag&`)).toBe(true);
      expect(location.endsWith('#top')).toBe(true);
      const back = new URL(location);
      expect(back.searchParams.get('connected')).toBe('jobber');
      expect(back.searchParams.get('connection_id')).toBe(id);
      // The id as it came back works as a path segment of the token API, encoded or not.
      for (const segment of [encodeURIComponent(id), id]) {
        const token = await b1.api(`/internal/connections/jobber/${segment}/token`);
        expect({ segment, status: token.status }).toEqual({ segment, status: 200 });
      }
    });

    it('shows a short HTML page after a callback without return_to', async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(b1, browser, 'jobber', 'acct-page');
      const done = await callback(b1, browser, 'jobber', { code: 'code-page', state: flow.state });
      expect(done.status).toBe(200);
      expect(done.headers.get('content-type')).toMatch(/^text\/html/);
      expect(done.body).toContain('acct-page');
    });

    it('answers 400 to a callback matched to no flow of this browser, and calls no token endpoint', async () => {
      const before = fake.tokenRequests.length;
      const browser = new TestBrowser();
      const flow = await openFlow(b1, browser, 'jobber', 'acct-unmatched', { return_to: RETURN_TO });
      const noCookie = await callback(b1, new TestBrowser(), 'jobber', {
        code: 'code-unmatched',
        state: flow.state,
      });
      const unknownState = await callback(b1, browser, 'jobber', {
        code: 'code-unmatched',
        state: 'x'.repeat(43),
      });
      const otherProvider = await callback(b1, browser, 'process-street', {
        code: 'code-unmatched',
        state: flow.state,
      });
      expect([noCookie.status, unknownState.status, otherProvider.status]).toEqual([400, 400, 400]);
      expect(fake.tokenRequests.length).toBe(before);
    });

    describe('every callback failure redirects with error=, uses the flow up, and stores or overwrites nothing', () => {
      let kept: { access_token: string; updated_at: string };

      beforeAll(async () => {
        const browser = new TestBrowser();
        const flow = await openFlow(b1, browser, 'bexio', 'acct-keep');
        const done = await callback(b1, browser, 'bexio', {
          code: 'code-keep',
          state: flow.state,
          iss: ISSUER,
        });
        expect(done.status).toBe(200);
        const token = await b1.api('/internal/connections/bexio/acct-keep/token');
        const meta = await b1.api('/internal/connections/bexio/acct-keep');
        kept = { access_token: token.body.access_token, updated_at: meta.body.updated_at };
      });

      interface FailureCase {
        what: string;
        query: Record<string, string>;
        code: string;
        arrange?: (f: FakeProvider) => void;
      }
      const cases: FailureCase[] = [
        { what: 'the user said no', query: { error: 'access_denied', iss: ISSUER }, code: 'access_denied' },
        {
          what: 'iss names another server',
          query: { code: 'code-f1', iss: 'https://evil.example.test' },
          code: 'invalid_issuer',
        },
        { what: 'iss is missing', query: { code: 'code-f2' }, code: 'invalid_issuer' },
        { what: 'an error response lacks iss', query: { error: 'access_denied' }, code: 'invalid_issuer' },
        {
          what: 'the provider sends another error',
          query: { error: 'server_error', iss: ISSUER },
          code: 'provider_error',
        },
        { what: 'neither code nor error comes back', query: { iss: ISSUER }, code: 'provider_error' },
        {
          what: 'the token endpoint refuses the code',
          query: { code: 'code-f3', iss: ISSUER },
          code: 'token_exchange_failed',
          arrange: (f) => f.failNext(1, 400, { error: 'invalid_grant' }),
        },
        {
          what: 'the token endpoint fails',
          query: { code: 'code-f4', iss: ISSUER },
          code: 'provider_unavailable',
          arrange: (f) => f.failNext(1, 503, { error: 'temporarily_unavailable' }),
        },
        {
          what: 'the token endpoint answers garbage',
          query: { code: 'code-f5', iss: ISSUER },
          code: 'provider_unavailable',
          arrange: (f) => f.failNext(1, 200, '<html>oops</html>', 'text/html'),
        },
      ];

      it.each(cases)('when $what: error=$code', async ({ query, code, arrange }) => {
        for (const id of ['acct-keep', 'acct-never']) {
          const browser = new TestBrowser();
          const flow = await openFlow(b1, browser, 'bexio', id, { return_to: `${RETURN_TO}?from=app` });
          arrange?.(fake);
          const failed = await callback(b1, browser, 'bexio', { state: flow.state, ...query });
          expect(failed.status).toBe(303);
          const back = new URL(failed.location!);
          expect(`${back.origin}${back.pathname}`).toBe(RETURN_TO);
          expect(back.searchParams.get('error')).toBe(code);
          expect(back.searchParams.get('from')).toBe('app');
          expect(back.searchParams.has('connected')).toBe(false);

          // Used up: the same callback again matches nothing and calls no token endpoint.
          const exchanges = fake.tokenRequests.length;
          const replay = await callback(b1, browser, 'bexio', { state: flow.state, ...query });
          expect(replay.status).toBe(400);
          expect(fake.tokenRequests.length).toBe(exchanges);
        }
        const token = await b1.api('/internal/connections/bexio/acct-keep/token');
        const meta = await b1.api('/internal/connections/bexio/acct-keep');
        expect({
          access_token: token.body.access_token,
          updated_at: meta.body.updated_at,
          status: meta.body.status,
        }).toEqual({ ...kept, status: 'active' });
        expectProblem(await b1.api('/internal/connections/bexio/acct-never'), 404, 'connection_not_found');
        expect((await connectionFootprint(redisClient, 'bexio', 'acct-never')).keys).toEqual([]);
      });

      it('shows a page instead when the flow has no return_to', async () => {
        const browser = new TestBrowser();
        const flow = await openFlow(b1, browser, 'bexio', 'acct-never');
        const failed = await callback(b1, browser, 'bexio', {
          state: flow.state,
          error: 'access_denied',
          iss: ISSUER,
        });
        expect(failed.status).toBeGreaterThanOrEqual(400);
        expect(failed.headers.get('content-type')).toMatch(/^text\/html/);
        expectProblem(await b1.api('/internal/connections/bexio/acct-never'), 404, 'connection_not_found');
      });

      it('replaces the tokens on a successful reconnect, starting the record afresh with created_at kept', async () => {
        const refreshed = await b1.api('/internal/connections/bexio/acct-keep/token?force_refresh=true');
        const before = await b1.api('/internal/connections/bexio/acct-keep');
        expect(before.body.last_refreshed_at).not.toBeNull();
        const browser = new TestBrowser();
        const flow = await openFlow(b1, browser, 'bexio', 'acct-keep');
        expect(
          (await callback(b1, browser, 'bexio', { code: 'code-again', state: flow.state, iss: ISSUER }))
            .status,
        ).toBe(200);
        const token = await b1.api('/internal/connections/bexio/acct-keep/token');
        expect(token.body.access_token).not.toBe(refreshed.body.access_token);
        expect(fake.issued[fake.issued.length - 1]!.access_token).toBe(token.body.access_token);
        const after = await b1.api('/internal/connections/bexio/acct-keep');
        expect(after.body).toMatchObject({
          created_at: before.body.created_at,
          status: 'active',
          refresh_failures: 0,
          last_error: null,
          last_refreshed_at: null,
        });
      });
    });
  });

  describe('internal token API', () => {
    beforeAll(async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(b1, browser, 'jobber', 'acct-tok');
      expect((await callback(b1, browser, 'jobber', { code: 'code-tok', state: flow.state })).status).toBe(
        200,
      );
    });

    it('answers {access_token, token_type, expires_at, scopes, auth_mode: "oauth2"} for an oauth2 connection', async () => {
      const res = await b1.api('/internal/connections/jobber/acct-tok/token');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.body).toEqual(
        expect.objectContaining({
          access_token: expect.any(String),
          token_type: 'Bearer',
          scopes: [],
          auth_mode: 'oauth2',
        }),
      );
      expect(res.body.expires_at).toMatch(ISO_8601);
      expect(fake.issued.some((t) => t.access_token === res.body.access_token)).toBe(true);
    });

    it('refuses min_validity and force_refresh outside the rules with 400 invalid_request, and takes the edges', async () => {
      for (const query of [
        'min_validity=abc',
        'min_validity=-1',
        'min_validity=1.5',
        'min_validity=86401',
        'min_validity=',
        'min_validity=1&min_validity=2',
        'force_refresh=yes',
        'force_refresh=1',
        'force_refresh=TRUE',
        'force_refresh=',
      ]) {
        const res = await b1.api(`/internal/connections/jobber/acct-tok/token?${query}`);
        expect({ query, status: res.status, code: res.body?.code }).toEqual({
          query,
          status: 400,
          code: 'invalid_request',
        });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      const current = (await b1.api('/internal/connections/jobber/acct-tok/token')).body.access_token;
      const refreshes = fake.refreshRequests.length;
      expect(
        (await b1.api('/internal/connections/jobber/acct-tok/token?min_validity=0&force_refresh=false')).body
          .access_token,
      ).toBe(current);
      expect(fake.refreshRequests.length).toBe(refreshes);

      // A token living an hour cannot satisfy a day: refreshed, and the fresh token answered 200.
      const day = await b1.api('/internal/connections/jobber/acct-tok/token?min_validity=86400');
      expect(day.status).toBe(200);
      expect(day.body.access_token).not.toBe(current);
      expect(fake.refreshRequests.length).toBe(refreshes + 1);

      const forced = await b1.api('/internal/connections/jobber/acct-tok/token?force_refresh=true');
      expect(forced.status).toBe(200);
      expect(forced.body.access_token).not.toBe(day.body.access_token);
      expect(fake.refreshRequests.length).toBe(refreshes + 2);
    });

    it('imports with PUT (201 new, 200 replaced, created_at kept), shows metadata without secrets, deletes with 204, then 404', async () => {
      const path = '/internal/connections/jobber/acct-put';
      const created = await b1.api(path, {
        method: 'PUT',
        body: { access_token: 'imported-access-1', refresh_token: 'imported-refresh-1', expires_in: 3600 },
      });
      expect(created.status).toBe(201);
      expect(Object.keys(created.body).sort()).toEqual(
        expect.arrayContaining(
          [
            'provider',
            'connection_id',
            'auth_mode',
            'status',
            'scopes',
            'expires_at',
            'created_at',
            'updated_at',
            'last_refreshed_at',
            'last_error',
            'refresh_failures',
            'next_refresh_at',
            'key_id',
          ].sort(),
        ),
      );
      expect(created.body).toMatchObject({
        provider: 'jobber',
        connection_id: 'acct-put',
        auth_mode: 'oauth2',
        status: 'active',
        last_refreshed_at: null,
        last_error: null,
        refresh_failures: 0,
        key_id: 'k1',
      });
      expect(JSON.stringify(created.body)).not.toMatch(/imported-(access|refresh)/);
      await new Promise((r) => setTimeout(r, 5));
      const replaced = await b1.api(path, {
        method: 'PUT',
        body: {
          access_token: 'imported-access-2',
          expires_at: new Date(Date.now() + 7_200_000).toISOString(),
        },
      });
      expect(replaced.status).toBe(200);
      expect(replaced.body.created_at).toBe(created.body.created_at);
      expect((await b1.api(`${path}/token`)).body.access_token).toBe('imported-access-2');
      expectProblem(
        await b1.api(path, {
          method: 'PUT',
          body: { access_token: 'x', expires_in: 60, expires_at: new Date().toISOString() },
        }),
        400,
        'invalid_request',
      );
      expect((await b1.api(`${path}/token`)).body.access_token).toBe('imported-access-2');

      const gone = await b1.api(path, { method: 'DELETE' });
      expect(gone.status).toBe(204);
      expect(gone.body).toBeUndefined();
      expectProblem(await b1.api(path), 404, 'connection_not_found');
      expectProblem(await b1.api(`${path}/token`), 404, 'connection_not_found');
    });

    it('lists connections page by page ({connections, next_cursor}, null at the end) and refuses a limit outside 1-1000', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: ApiAnswer = await b1.api(
          `/internal/connections?provider=jobber&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.status).toBe(200);
        expect(page.body.connections.length).toBeLessThanOrEqual(2);
        for (const c of page.body.connections) {
          expect(c.provider).toBe('jobber');
          expect(c).not.toHaveProperty('access_token');
          seen.push(c.connection_id);
        }
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      expect(seen).toEqual(expect.arrayContaining(['acct-tok', 'multi-a', 'a.B_9:x@y-z']));
      expect(new Set(seen).size).toBe(seen.length);
      for (const limit of ['0', '1001', 'x'])
        expectProblem(await b1.api(`/internal/connections?limit=${limit}`), 400, 'invalid_request');
    });
  });

  describe('Redis keys and what is kept in them', () => {
    it("keeps two brokers with different REDIS_KEY_PREFIX apart on one Redis; a connection's keys carry {provider:connection_id} after the prefix", async () => {
      const path = '/internal/connections/jobber/shared-1';
      expect(
        (await b1.api(path, { method: 'PUT', body: { access_token: 'tenant-one-access' } })).status,
      ).toBe(201);
      expect(
        (await b2.api(path, { method: 'PUT', body: { access_token: 'tenant-two-access' } })).status,
      ).toBe(201);
      expect((await b1.api(`${path}/token`)).body.access_token).toBe('tenant-one-access');
      expect((await b2.api(`${path}/token`)).body.access_token).toBe('tenant-two-access');
      expectProblem(await b2.api('/internal/connections/jobber/acct-tok'), 404, 'connection_not_found');
      const listed = await b2.api('/internal/connections?limit=1000');
      expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([
        'shared-1',
      ]);

      const keys = [...(await dumpRedis(redisClient)).keys()];
      expect(keys.filter((k) => k.startsWith('ob:{jobber:shared-1}')).length).toBeGreaterThan(0);
      expect(keys.filter((k) => k.startsWith('tenant2:{jobber:shared-1}')).length).toBeGreaterThan(0);
      // Every key of a connection carries its tag right after the prefix.
      expect(
        keys.filter((k) => k.includes('jobber:shared-1') && !/^(ob:|tenant2:)\{jobber:shared-1\}/.test(k)),
      ).toEqual([]);

      expect((await b2.api(path, { method: 'DELETE' })).status).toBe(204);
      const after = [...(await dumpRedis(redisClient)).keys()];
      expect(after.filter((k) => k.startsWith('tenant2:{jobber:shared-1}'))).toEqual([]);
      expect((await b1.api(`${path}/token`)).body.access_token).toBe('tenant-one-access');
    });

    it('writes every key under its prefix, and no plaintext token or client secret to Redis, a log line or /metrics', async () => {
      const dump = await dumpRedis(redisClient);
      expect([...dump.keys()].filter((k) => !k.startsWith('ob:') && !k.startsWith('tenant2:'))).toEqual([]);
      const text = [...dump.entries()].map(([k, v]) => `${k} ${v}`).join('\n');
      const metrics = await (await fetch(`${b1.internalUrl}/metrics`)).text();
      const logs = b1.stdout + b1.stderr + b2.stdout + b2.stderr;
      const secrets = [
        ...fake.issued.flatMap((t) => [t.access_token, t.refresh_token ?? '']),
        'imported-access-2',
        'tenant-one-access',
        'jobber-secret',
        'process-street-secret',
        'bexio-secret',
      ].filter(Boolean);
      expect(secrets.length).toBeGreaterThan(10);
      for (const secret of secrets) {
        expect({
          secret,
          redis: text.includes(secret),
          log: logs.includes(secret),
          metrics: metrics.includes(secret),
        }).toEqual({
          secret,
          redis: false,
          log: false,
          metrics: false,
        });
      }
      // Nor the codes, verifiers, session secret, data key or internal API keys in a log line.
      const verifiers = fake.tokenRequests.map((r) => r.params.code_verifier).filter(Boolean) as string[];
      const never = [
        ...verifiers,
        'code-keep',
        'code-tok',
        'a-session-secret-that-is-long-enough',
        Buffer.alloc(32, 7).toString('base64'),
        TEST_INTERNAL_KEY,
        SECOND_KEY,
      ];
      for (const secret of never)
        expect({ secret, log: logs.includes(secret) }).toEqual({ secret, log: false });
    });
  });

  describe('operations CLI, run with the broker environment', () => {
    const cliEnv = (): Record<string, string> => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...env1, PUBLIC_URL: b1.publicUrl }))
        if (v !== undefined) env[k] = v;
      return env;
    };

    it('`npm run cli -- providers` shows each provider with its mode, scopes and redirect URI, and no secret', async () => {
      const run = await runCommand(
        'npm',
        ['run', '--silent', 'cli', '--', 'providers'],
        { ...cliEnv(), HOME: process.env.HOME ?? '/tmp' },
        ROOT,
      );
      expect(run.code).toBe(0);
      const line = (id: string): string => run.stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
      expect(line('bexio')).toMatch(/\benabled\b.*\boauth2\b/);
      expect(line('bexio')).toContain('openid contact_show offline_access');
      expect(line('bexio')).toContain(`${b1.publicUrl}/callback/bexio`);
      expect(line('process-street')).toContain('read,write');
      expect(line('jobber')).toContain(`${b1.publicUrl}/callback/jobber`);
      expect(line('bonjoro')).not.toMatch(/\benabled\b/);
      expect(run.stdout + run.stderr).not.toMatch(/-secret/);
    });

    it('`connections list`, `show` and `delete` do what the internal API does (delete revokes at the provider)', async () => {
      const minted = fake.mint();
      const put = await b1.api('/internal/connections/jobber/cli-1', {
        method: 'PUT',
        body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
      });
      expect(put.status).toBe(201);

      const list = await runCli(['connections', 'list', '--provider', 'jobber'], cliEnv());
      expect(list.code).toBe(0);
      const lines = list.stdout.trim().split('\n');
      expect(lines.some((l) => l.startsWith('jobber cli-1 active'))).toBe(true);
      expect(lines.every((l) => l.startsWith('jobber '))).toBe(true);

      const show = await runCli(['connections', 'show', 'jobber', 'cli-1'], cliEnv());
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toEqual((await b1.api('/internal/connections/jobber/cli-1')).body);
      for (const run of [list, show]) {
        expect(run.stdout).not.toContain(minted.access_token as string);
        expect(run.stdout).not.toContain(minted.refresh_token as string);
      }

      const del = await runCli(['connections', 'delete', 'jobber', 'cli-1'], cliEnv());
      expect(del.code).toBe(0);
      expectProblem(await b1.api('/internal/connections/jobber/cli-1'), 404, 'connection_not_found');
      await until(() => fake.revocations.some((r) => r.params.token === minted.refresh_token), 5000);

      const missing = await runCli(['connections', 'show', 'jobber', 'cli-1'], cliEnv());
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('connection_not_found');
    });

    it('`keys generate` prints a fresh kid:base64(32 bytes) key; `keys status` counts connections per key id', async () => {
      const keys = await Promise.all([runCli(['keys', 'generate'], {}), runCli(['keys', 'generate'], {})]);
      const material = keys.map((run) => {
        expect(run.code).toBe(0);
        const m = /^([A-Za-z0-9._-]{1,64}):([A-Za-z0-9+/]+={0,2})\n$/.exec(run.stdout);
        expect(m).not.toBeNull();
        expect(Buffer.from(m![2]!, 'base64')).toHaveLength(32);
        return m![2];
      });
      expect(material[0]).not.toBe(material[1]);

      const listed = await b1.api('/internal/connections?limit=1000');
      expect(listed.body.next_cursor).toBeNull();
      const status = await runCli(['keys', 'status'], cliEnv());
      expect(status.code).toBe(0);
      expect(status.stdout).toBe(`k1 ${listed.body.connections.length}\n`);
    });
  });

  describe('Redis URLs an operator may give', () => {
    it('works over rediss:// (TLS) with the CA given through NODE_EXTRA_CA_CERTS: connect and token round trip', async () => {
      tls ??= makeTlsMaterial();
      const material = tls;
      let server: RedisProcess;
      try {
        server = await RedisProcess.start(
          (port) => ['--port', '0', '--tls-port', String(port)],
          [
            '--tls-cert-file',
            material.certFile,
            '--tls-key-file',
            material.keyFile,
            '--tls-ca-cert-file',
            material.caFile,
            '--tls-auth-clients',
            'no',
          ],
        );
      } catch (error) {
        console.log(
          `skipped the rediss:// check: this redis-server does not serve TLS (${(error as Error).message.slice(0, 200)})`,
        );
        return;
      }
      redisProcesses.push(server);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `rediss://127.0.0.1:${server.port}`,
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-tls');
      expect(broker.stderr).not.toMatch(/Error|warning/i);
      await broker.stop('SIGKILL');
    });

    it('authenticates with the password of redis://:password@host:port (percent-encoded), and never prints it', async () => {
      const password = 'S3cret p@ss/word:x';
      const server = await RedisProcess.start(
        (port) => ['--port', String(port)],
        ['--requirepass', password],
      );
      redisProcesses.push(server);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `redis://:${encodeURIComponent(password)}@127.0.0.1:${server.port}`,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-password');

      // A wrong password: alive, not ready, 503 store_unavailable, and neither password printed.
      const wrong = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `redis://:${encodeURIComponent('wrong-PASSWORD-x')}@127.0.0.1:${server.port}`,
        ...providerEnv('jobber', fake.url),
      });
      others.push(wrong);
      expect((await fetch(`${wrong.publicUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${wrong.internalUrl}/readyz`)).status).toBe(503);
      expectProblem(
        await wrong.api('/internal/connections/jobber/acct-password/token'),
        503,
        'store_unavailable',
      );
      for (const b of [broker, wrong]) {
        const output = b.stdout + b.stderr;
        expect(output).not.toContain(password);
        expect(output).not.toContain(encodeURIComponent(password));
        expect(output).not.toContain('wrong-PASSWORD-x');
      }
      await Promise.all([broker.stop('SIGKILL'), wrong.stop('SIGKILL')]);
    });
  });

  describe('Sentinel and Cluster: REDIS_URL still gives the password', () => {
    it('reaches the master REDIS_SENTINELS / REDIS_SENTINEL_NAME name, with the password of REDIS_URL (whose host is not used)', async () => {
      const password = 'sentinel-master-PASS';
      const master = await RedisProcess.start((p) => ['--port', String(p)], ['--requirepass', password]);
      redisProcesses.push(master);
      const sentinel = await RedisProcess.start((p) => ['--port', String(p)], ['--sentinel'], {
        config: (_port, dir) => {
          const file = join(dir, 'sentinel.conf');
          writeFileSync(
            file,
            `sentinel monitor obpass 127.0.0.1 ${master.port} 1\nsentinel auth-pass obpass ${password}\n`,
          );
          return file;
        },
      });
      redisProcesses.push(sentinel);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
        REDIS_SENTINEL_NAME: 'obpass',
        // Port 9 serves no Redis: only the sentinel's answer may decide where the master is.
        REDIS_URL: `redis://:${password}@127.0.0.1:9`,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-sentinel');
      expect(broker.stdout + broker.stderr).not.toContain(password);
      await broker.stop('SIGKILL');
    });

    it('reaches every master of REDIS_CLUSTER_NODES with the password of REDIS_URL', async () => {
      const password = 'cluster-PASS';
      const ports: number[] = [];
      while (ports.length < 3) {
        const port = await freePort();
        // The cluster bus listens on port + 10000.
        if (port + 10000 < 65536 && !ports.includes(port) && (await canListen(port + 10000, '127.0.0.1')))
          ports.push(port);
      }
      const nodes = await Promise.all(
        ports.map((port) =>
          RedisProcess.start(
            (p) => ['--port', String(p)],
            [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              `nodes-${port}.conf`,
              '--requirepass',
              password,
              '--masterauth',
              password,
            ],
            { port },
          ),
        ),
      );
      redisProcesses.push(...nodes);
      const created = await runCommand(
        'redis-cli',
        [
          '-a',
          password,
          '--no-auth-warning',
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        {},
        undefined,
        15_000,
      );
      expect(created.code).toBe(0);
      const probe = new Redis({ port: ports[0], host: '127.0.0.1', password, maxRetriesPerRequest: 1 });
      try {
        const deadline = Date.now() + 15_000;
        while (!/cluster_state:ok/.test((await probe.cluster('INFO')) as string)) {
          if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        probe.disconnect();
      }
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','),
        REDIS_URL: `redis://:${password}@127.0.0.1:9`,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      // Several connections, so their keys land on more than one master.
      for (const id of ['acct-cluster-1', 'acct-cluster-2', 'acct-cluster-3']) await roundTrip(broker, id);
      expect(broker.stdout + broker.stderr).not.toContain(password);
      await broker.stop('SIGKILL');
    });
  });

  describe('Sentinel and Cluster: a rediss:// REDIS_URL still turns TLS on', () => {
    let material: TlsMaterial;
    const tlsArgs = (): string[] => [
      '--tls-cert-file',
      material.certFile,
      '--tls-key-file',
      material.keyFile,
      '--tls-ca-cert-file',
      material.caFile,
      '--tls-auth-clients',
      'no',
    ];

    let supported = true;

    beforeAll(async () => {
      tls ??= makeTlsMaterial();
      material = tls;
      await RedisProcess.start((p) => ['--port', '0', '--tls-port', String(p)], tlsArgs()).then(
        (probe) => probe.close(),
        (error: Error) => {
          supported = false;
          console.log(
            `skipped the TLS Sentinel and Cluster checks: this redis-server does not serve TLS (${error.message.slice(0, 200)})`,
          );
        },
      );
    });

    it('talks TLS to the master a sentinel names', async () => {
      if (!supported) return;
      const master = await RedisProcess.start((p) => ['--port', '0', '--tls-port', String(p)], tlsArgs());
      redisProcesses.push(master);
      const sentinel = await RedisProcess.start(
        (p) => ['--port', String(p)],
        ['--sentinel', ...tlsArgs(), '--tls-replication', 'yes'],
        {
          config: (_port, dir) => {
            const file = join(dir, 'sentinel.conf');
            writeFileSync(file, `sentinel monitor obtls 127.0.0.1 ${master.port} 1\n`);
            return file;
          },
        },
      );
      redisProcesses.push(sentinel);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
        REDIS_SENTINEL_NAME: 'obtls',
        REDIS_URL: 'rediss://127.0.0.1:9',
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-sentinel-tls');
      await broker.stop('SIGKILL');
    });

    it('talks TLS to every master of REDIS_CLUSTER_NODES', async () => {
      if (!supported) return;
      const ports: number[] = [];
      while (ports.length < 3) {
        const port = await freePort();
        if (port + 10000 < 65536 && !ports.includes(port) && (await canListen(port + 10000, '127.0.0.1')))
          ports.push(port);
      }
      const nodes = await Promise.all(
        ports.map((port) =>
          RedisProcess.start(
            (p) => ['--port', '0', '--tls-port', String(p)],
            [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              `nodes-${port}.conf`,
              '--tls-cluster',
              'yes',
              ...tlsArgs(),
            ],
            { port },
          ),
        ),
      );
      redisProcesses.push(...nodes);
      const created = await runCommand(
        'redis-cli',
        [
          '--tls',
          '--cacert',
          material.caFile,
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        {},
        undefined,
        15_000,
      );
      expect(created.code).toBe(0);
      const deadline = Date.now() + 15_000;
      for (;;) {
        const info = await runCommand(
          'redis-cli',
          ['--tls', '--cacert', material.caFile, '-p', String(ports[2]), 'cluster', 'info'],
          {},
        );
        if (/cluster_state:ok/.test(info.stdout)) break;
        if (Date.now() > deadline) throw new Error('the TLS cluster did not reach cluster_state:ok');
        await new Promise((r) => setTimeout(r, 200));
      }
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','),
        REDIS_URL: 'rediss://127.0.0.1:9',
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', fake.url),
      });
      others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      for (const id of ['acct-tls-cluster-1', 'acct-tls-cluster-2', 'acct-tls-cluster-3'])
        await roundTrip(broker, id);
      await broker.stop('SIGKILL');
    });
  });

  describe('SIGTERM', () => {
    it('bounds the wait for a request in flight by SHUTDOWN_TIMEOUT, then exits 0', async () => {
      const minted = slowFake.mint();
      expect(
        (
          await b2.api('/internal/connections/jobber/slow-1', {
            method: 'PUT',
            body: { access_token: minted.access_token, refresh_token: minted.refresh_token },
          })
        ).status,
      ).toBe(201);
      slowFake.options.tokenDelayMs = 20_000;
      const before = slowFake.refreshRequests.length;
      const inFlight = b2
        .api('/internal/connections/jobber/slow-1/token?force_refresh=true')
        .catch((e: Error) => e);
      await until(() => slowFake.refreshRequests.length > before);
      const sentAt = slowFake.refreshRequests[slowFake.refreshRequests.length - 1]!.at;
      b2.child.kill('SIGTERM');
      await b2.waitForExit();
      expect(b2.exitCode).toBe(0);
      // Gone long before the provider would have answered (SHUTDOWN_TIMEOUT=1 against a 20 s answer).
      expect(Date.now()).toBeLessThan(sentAt + 20_000);
      const answer = await inFlight;
      expect(answer instanceof Error || answer.status !== 200).toBe(true);
    });

    it('closes idle keep-alive connections at once, finishes the request in flight, and exits 0 well before SHUTDOWN_TIMEOUT', async () => {
      const idle = await Promise.all([
        idleKeepAlive(b1.publicUrl, '/healthz'),
        idleKeepAlive(b1.internalUrl, '/readyz'),
      ]);
      expect(idle.map((i) => i.status)).toEqual([200, 200]);
      fake.options.tokenDelayMs = 1500;
      const before = fake.refreshRequests.length;
      const inFlight = b1.api('/internal/connections/jobber/acct-tok/token?force_refresh=true');
      await until(() => fake.refreshRequests.length > before);
      let answered = false;
      void inFlight.then(() => (answered = true));
      b1.child.kill('SIGTERM');
      await Promise.all(idle.map((i) => i.closed));
      // The idle sockets went first, while the request in flight still waited on the provider.
      expect(answered).toBe(false);
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body.access_token).toBe(fake.issued[fake.issued.length - 1]!.access_token);
      // SHUTDOWN_TIMEOUT is 60 s here: an exit within 15 s means nothing waited on an idle socket.
      await Promise.race([
        b1.waitForExit(),
        new Promise((_, fail) => setTimeout(() => fail(new Error('no exit within 15 s')), 15_000)),
      ]);
      expect(b1.exitCode).toBe(0);
      fake.options.tokenDelayMs = 0;
    }, 30_000);
  });

  /** Connect (full browser journey) and read the token back through the internal API. */
  async function roundTrip(broker: BrokerProcess, id: string): Promise<void> {
    const browser = new TestBrowser();
    const flow = await openFlow(broker, browser, 'jobber', id, { return_to: RETURN_TO });
    const done = await callback(broker, browser, 'jobber', { code: `code-${id}`, state: flow.state });
    expect(done.status).toBe(303);
    expect(new URL(done.location!).searchParams.get('connected')).toBe('jobber');
    const token = await broker.api(`/internal/connections/jobber/${id}/token`);
    expect(token.status).toBe(200);
    expect(fake.issued.some((t) => t.access_token === token.body.access_token)).toBe(true);
  }
});

/** `node dist/cli/main.js …`, as `npx oauth-broker …` runs it. */
function runCli(args: string[], env: Record<string, string>): ReturnType<typeof runCommand> {
  return runCommand(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], env);
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether something accepts TCP connections on host:port. */
function portBusy(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.connect(port, host);
    socket.setTimeout(1000, () => {
      socket.destroy();
      done(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Whether this process could listen on host:port now. */
function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const server = net.createServer();
    server.once('error', () => done(false));
    server.listen(port, host, () => server.close(() => done(true)));
  });
}
