import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Demo } from '../../src/demo/create-demo';
import { ensureBuilt } from '../helpers/broker-process';
import { TestBrowser } from '../helpers/browser';
import { RunningDemo, startDemo, stopDemo } from '../helpers/demo-fixture';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';

const ROOT = join(__dirname, '..', '..');
const KEY = 'the-example-services-key-0123456789abcdef';

/**
 * examples/connect-service/server.mjs, run as its docs say, against the demo: a connect link, the
 * sandbox's consent, the return with ?connected= (a token, then the sandbox API) or ?error=.
 */
describe('the example service against the demo', () => {
  let redis: TestRedis;
  let demo: Demo;
  let running: RunningDemo;
  let example: ChildProcess;
  let exampleUrl: string;
  let output = '';

  beforeAll(async () => {
    redis = await TestRedis.start();
    const examplePort = await freePort();
    exampleUrl = `http://127.0.0.1:${examplePort}`;
    running = await startDemo(redis.url, 'example-test:', {
      env: { INTERNAL_API_KEYS: KEY, ALLOWED_RETURN_URLS: exampleUrl },
    });
    demo = running.demo;
    await ensureBuilt(); // the client package's build, which the example loads by name
    example = spawn(process.execPath, [join(ROOT, 'examples', 'connect-service', 'server.mjs')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        PORT: String(examplePort),
        SERVICE_URL: exampleUrl,
        BROKER_URL: demo.internalUrl,
        BROKER_API_KEY: KEY,
      },
    });
    example.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
    example.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
    await until(() => (output.includes('Example service on') ? true : undefined), 20_000).catch(() => {
      throw new Error(`the example did not start:\n${output}`);
    });
  }, 180_000);

  afterAll(async () => {
    example?.kill('SIGTERM');
    await stopDemo(running);
    await redis.close();
  });

  /** From the example's connect link to the sandbox's consent; answers the consent form's request id. */
  async function toConsent(browser: TestBrowser, user: string): Promise<string> {
    const start = await browser.get(`${exampleUrl}/connect?user=${user}`);
    expect(start.status).toBe(302);
    expect(start.location).toMatch(new RegExp(`^${demo.publicUrl}/auth/sandbox\\?session=`));
    const auth = await browser.get(start.location!);
    const consent = await browser.get(auth.location!);
    return /name="request" value="([^"]+)"/.exec(consent.body)![1]!;
  }

  it('connects a user, comes back with ?connected=, fetches a token and calls the provider’s API with it', async () => {
    const browser = new TestBrowser();
    const request = await toConsent(browser, 'alice');
    const allowed = await browser.postForm(`${demo.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'allow',
    });
    const callback = await browser.get(allowed.location!);
    expect(callback.status).toBe(303);
    const back = new URL(callback.location!);
    expect(`${back.origin}${back.pathname}`).toBe(`${exampleUrl}/return`);
    expect(back.searchParams.get('connected')).toBe('sandbox');
    const page = await browser.get(callback.location!);
    expect(page.status).toBe(200);
    expect(page.body).toContain("Connected alice. The provider's API answered 200:");
    expect(page.body).toContain('&#34;id&#34;');
    const meta = await fetch(`${demo.internalUrl}/internal/connections/sandbox/alice`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(meta.status).toBe(200);
  });

  it('comes back with ?error=access_denied when the user says no, and offers the link again', async () => {
    const browser = new TestBrowser();
    const request = await toConsent(browser, 'bob');
    const denied = await browser.postForm(`${demo.publicUrl}/sandbox/authorize`, {
      request,
      decision: 'deny',
    });
    const callback = await browser.get(denied.location!);
    expect(new URL(callback.location!).searchParams.get('error')).toBe('access_denied');
    const page = await browser.get(callback.location!);
    expect(page.body).toContain('Not connected (access_denied).');
    expect(page.body).toContain('href="/connect?user=bob"');
  });

  it('a user who never connected gets the connect link (connection_not_found), not a crash', async () => {
    const page = await new TestBrowser().get(
      `${exampleUrl}/return?user=carol&connected=sandbox&connection_id=carol`,
    );
    expect(page.status).toBe(409);
    expect(page.body).toContain('connection_not_found');
    expect(page.body).toContain('href="/connect?user=carol"');
  });
});
