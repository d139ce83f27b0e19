import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import Redis from 'ioredis';
import { TEST_INTERNAL_KEY, baseEnv, providerEnv } from './broker-harness';
import { ApiAnswer, BrokerProcess, ensureBuilt } from './broker-process';
import { PageResponse, TestBrowser, openConnectLink } from './browser';
import { RedisProcess, TlsMaterial, dumpRedis, runCommand } from './contract-process';
import { FakeProvider } from './fake-provider';
import { freePort } from './free-port';
import { TestRedis } from './redis-server';

/**
 * What the contract-*.test.ts files share: the contract checked from outside, statement by
 * statement (docs/api.md, docs/configuration.md, docs/operations.md), on the built broker started
 * as an operator starts it (`node dist/main.js`, only the documented variables, their defaults for
 * the rest), driven over HTTP like a browser and the app's services would, with what reaches the
 * provider and what sits in Redis looked at directly. Behaviours other files already check on a
 * real process (Redis outage and recovery, Sentinel failover, the in-flight drain on several
 * processes) are not repeated there.
 */

export const ROOT = join(__dirname, '..', '..');
export const ISSUER = 'https://id.example.test/realms/acme';
export const SECOND_KEY = 'second-internal-key-abcdef0123456789';
export const RETURN_TO = 'http://127.0.0.1:9/done';
export const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The documented variables only: anything else the test harness sets is taken away again. */
export const CONTRACT_DEFAULTS = { LOG_LEVEL: undefined, RATE_LIMIT_PER_MINUTE: undefined };

export function sha256(value: string, encoding: 'hex' | 'base64url' = 'hex'): string {
  return createHash('sha256').update(value).digest(encoding);
}

export function expectProblem(res: ApiAnswer, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  for (const field of ['type', 'title', 'detail']) expect(typeof res.body[field]).toBe('string');
  expect(res.body.status).toBe(status);
}

export function cookieAttributes(setCookie: string): string[] {
  return setCookie
    .split(';')
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

export interface Flow {
  state: string;
  authorizeUrl: URL;
  auth: PageResponse;
  link: string;
}

/** Asks `broker` for a link and opens it in `browser` on the broker's own listener. */
export async function openFlow(
  broker: BrokerProcess,
  browser: TestBrowser,
  provider: string,
  connectionId: string,
  extra: Record<string, unknown> = {},
): Promise<Flow> {
  const link = await broker.connectLink(provider, connectionId, extra);
  const url = new URL(link);
  const opened = await openConnectLink(browser, `${broker.publicUrl}${url.pathname}${url.search}`);
  return { ...opened, link };
}

export function callback(
  broker: BrokerProcess,
  browser: TestBrowser,
  provider: string,
  query: Record<string, string>,
): Promise<PageResponse> {
  return browser.get(`${broker.publicUrl}/callback/${provider}?${new URLSearchParams(query).toString()}`);
}

/**
 * Connects `id` at `jobber` through the full browser journey (with a return_to) and reads the
 * token back through the internal API: it must be one the fake provider issued.
 */
export async function roundTrip(broker: BrokerProcess, fake: FakeProvider, id: string): Promise<void> {
  const browser = new TestBrowser();
  const flow = await openFlow(broker, browser, 'jobber', id, { return_to: RETURN_TO });
  const done = await callback(broker, browser, 'jobber', { code: `code-${id}`, state: flow.state });
  expect(done.status).toBe(303);
  expect(new URL(done.location!).searchParams.get('connected')).toBe('jobber');
  const token = await broker.api(`/internal/connections/jobber/${id}/token`);
  expect(token.status).toBe(200);
  expect(fake.issued.some((t) => t.access_token === token.body.access_token)).toBe(true);
}

/** Connects `id` at `provider` through the browser without a return_to: the callback answers 200. */
export async function connectInBrowser(
  broker: BrokerProcess,
  provider: string,
  id: string,
  code: string,
): Promise<void> {
  const browser = new TestBrowser();
  const flow = await openFlow(broker, browser, provider, id);
  expect((await callback(broker, browser, provider, { code, state: flow.state })).status).toBe(200);
}

export interface ContractSuite {
  redis: TestRedis;
  redisClient: Redis;
  fake: FakeProvider;
  /** The provider of the second broker (its SIGTERM test makes it slow). */
  slowFake: FakeProvider;
  /** The broker most tests drive: bexio (with an issuer), jobber and process-street on `fake`. */
  b1: BrokerProcess;
  /** b1's environment, for the CLI ("with the same environment as the broker"). */
  env1: Record<string, string | undefined>;
  /**
   * Another tenant on the same Redis (REDIS_KEY_PREFIX tenant2:), with a short link life, an
   * https PUBLIC_URL under a path and a short shutdown; jobber on `slowFake`.
   */
  b2: BrokerProcess;
  /** Brokers and Redis servers a test starts itself, stopped after the file. */
  others: BrokerProcess[];
  redisProcesses: RedisProcess[];
  close(): Promise<void>;
}

/**
 * Builds dist/ if needed, then starts a private Redis, two fake providers and, as `brokers` says,
 * none, b1, or b1 and b2 (real `node dist/main.js` processes). Call from beforeAll (allow two
 * minutes) and `close()` from afterAll.
 */
export async function startContractSuite(brokers: 0 | 1 | 2): Promise<ContractSuite> {
  const s = {
    others: [] as BrokerProcess[],
    redisProcesses: [] as RedisProcess[],
  } as unknown as ContractSuite;
  s.close = async () => {
    await Promise.all([s.b1, s.b2, ...s.others].filter(Boolean).map((b) => b.stop('SIGKILL')));
    s.redisClient?.disconnect();
    await Promise.all(s.redisProcesses.map((r) => r.close()));
    await s.fake?.close();
    await s.slowFake?.close();
    await s.redis?.close();
  };
  // `npm run build`, once, unless dist/ is already newer than src/.
  await ensureBuilt();
  s.redis = await TestRedis.start();
  s.redisClient = s.redis.client();
  s.fake = await FakeProvider.start();
  s.slowFake = await FakeProvider.start();
  const b1Port = await freePort();
  s.env1 = {
    ...(baseEnv(b1Port) as Record<string, string>),
    ...CONTRACT_DEFAULTS,
    REDIS_URL: s.redis.url,
    INTERNAL_API_KEYS: `${TEST_INTERNAL_KEY},${SECOND_KEY}`,
    SHUTDOWN_TIMEOUT: '60',
    ...providerEnv('jobber', s.fake.url),
    ...providerEnv('process-street', s.fake.url),
    ...providerEnv('bexio', s.fake.url, {
      BEXIO_ISSUER: ISSUER,
      BEXIO_SCOPES: 'openid,contact_show offline_access',
    }),
  };
  if (brokers === 0) return s;
  const started = await Promise.all([
    BrokerProcess.start(s.env1, { publicPort: b1Port }),
    brokers === 2
      ? BrokerProcess.start({
          ...CONTRACT_DEFAULTS,
          REDIS_URL: s.redis.url,
          REDIS_KEY_PREFIX: 'tenant2:',
          // Behind a proxy that serves the broker under a path (trailing slash and all).
          PUBLIC_URL: 'https://connect2.example.test/oauth/',
          CONNECT_SESSION_TTL: '1',
          SHUTDOWN_TIMEOUT: '1',
          PROVIDER_TIMEOUT: '30',
          ...providerEnv('jobber', s.slowFake.url),
        })
      : undefined,
  ]);
  s.b1 = started[0];
  if (started[1]) s.b2 = started[1];
  return s;
}

/**
 * Checks that none of `secrets` sits in the suite's Redis, a log line of its brokers or b1's
 * /metrics, and none of `logOnly` (codes, verifiers, keys that never reach Redis as such) in a
 * log line; each miss names the secret and where it was found.
 */
export async function expectKeptOut(
  suite: ContractSuite,
  secrets: string[],
  logOnly: string[],
): Promise<void> {
  const dump = await dumpRedis(suite.redisClient);
  const text = [...dump.entries()].map(([k, v]) => `${k} ${v}`).join('\n');
  const metrics = await (await fetch(`${suite.b1.internalUrl}/metrics`)).text();
  const logs = [suite.b1, suite.b2].map((b) => (b ? b.stdout + b.stderr : '')).join('');
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
  for (const secret of logOnly)
    expect({ secret, log: logs.includes(secret) }).toEqual({ secret, log: false });
}

/** The PKCE verifiers that reached `fake`'s token endpoint. */
export function verifiersSeenBy(fake: FakeProvider): string[] {
  return fake.tokenRequests.map((r) => r.params.code_verifier).filter(Boolean) as string[];
}

/**
 * For the describe block it is called in: `startContractSuite(brokers)` in beforeAll and its
 * `close()` in afterAll. The handle's fields are there from beforeAll on; a test's own beforeAll
 * or afterAll declared after this call runs after this one's.
 */
export function useContractSuite(brokers: 0 | 1 | 2): ContractSuite {
  const handle = {} as ContractSuite;
  beforeAll(async () => {
    Object.assign(handle, await startContractSuite(brokers));
  }, 120_000);
  afterAll(async () => {
    await handle.close?.();
  });
  return handle;
}

/** Removes TLS material a file made (makeTlsMaterial), if it made any. */
export function removeTlsMaterial(tls: TlsMaterial | undefined): void {
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
}

/** `node dist/cli/main.js …`, as `npx oauth-broker …` runs it. */
export function runCli(args: string[], env: Record<string, string>): ReturnType<typeof runCommand> {
  return runCommand(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], env);
}

/** Whether something accepts TCP connections on host:port. */
export function portBusy(port: number, host = '127.0.0.1'): Promise<boolean> {
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
export function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const server = net.createServer();
    server.once('error', () => done(false));
    server.listen(port, host, () => server.close(() => done(true)));
  });
}
