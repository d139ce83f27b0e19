import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { ensureBuilt } from '../helpers/broker-process';
import { freePort } from '../helpers/free-port';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const USER_KEY = 'a-users-own-internal-key-0123456789abcdef';
const USER_RETURN = 'http://127.0.0.1:9/myapp';

interface RunningDemo {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  publicPort: number;
  internalPort: number;
}

/** The processes of a process group (pid and command line), from ps. */
async function groupMembers(pgid: number): Promise<string[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,args=', '-g', String(pgid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

describe('the demo as people run it: configuration from the environment or .env, and stopping it', () => {
  let redis: TestRedis;
  let client: Redis;
  const started: RunningDemo[] = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = new Redis(redis.url);
    await ensureBuilt();
  }, 180_000);

  afterEach(async () => {
    // A test that failed half-way must not leave its demo behind: its whole group goes.
    for (const demo of started.splice(0)) {
      try {
        process.kill(-demo.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await client.flushall();
  });

  afterAll(async () => {
    client.disconnect();
    await redis.close();
  });

  /** Starts the demo in a process group of its own (as a terminal would), and waits until it is ready. */
  async function start(
    command: string[],
    options: { env?: Record<string, string>; cwd?: string; ports?: [number, number] } = {},
  ): Promise<RunningDemo> {
    const [publicPort, internalPort] = options.ports ?? [await freePort(), await freePort()];
    // Ports given here come from a .env: the environment must not set them (dotenv never overrides).
    const portEnv: Record<string, string> = options.ports
      ? {}
      : { REDIS_URL: redis.url, PORT: String(publicPort), INTERNAL_PORT: String(internalPort) };
    const child = spawn(command[0]!, command.slice(1), {
      cwd: options.cwd ?? ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...portEnv,
        ...options.env,
      },
    });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    const demo = { child, output: () => output, exited, publicPort, internalPort };
    started.push(demo);
    await until(() => (output.includes('demo is running') ? true : undefined), 60_000).catch(() => {
      throw new Error(`the demo did not start:\n${output}`);
    });
    return demo;
  }

  /** A connect session, so the run has keys in Redis to remove. */
  async function makeKeys(demo: RunningDemo, key: string): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${demo.internalPort}/internal/connect-sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'sandbox', connection_id: 'someone' }),
    });
    expect(res.status).toBe(201);
    expect(await client.dbsize()).toBeGreaterThan(0);
  }

  /** After a stop: no process of the group is left, its ports are closed, and Redis holds no key. */
  async function expectGone(demo: RunningDemo): Promise<void> {
    await until(
      async () => ((await groupMembers(demo.child.pid!)).length === 0 ? true : undefined),
      20_000,
    ).catch(async () => {
      throw new Error(`still running: ${(await groupMembers(demo.child.pid!)).join('; ')}\n${demo.output()}`);
    });
    await expect(fetch(`http://127.0.0.1:${demo.publicPort}/healthz`)).rejects.toThrow();
    expect(await client.dbsize()).toBe(0);
    expect(demo.output()).toMatch(/Stopped; removed \d+ demo key\(s\) from Redis\./);
  }

  function generatedKey(demo: RunningDemo): string {
    return /Authorization: Bearer ([A-Za-z0-9_-]{32})"/.exec(demo.output())![1]!;
  }

  it('reads PORT, INTERNAL_PORT, INTERNAL_API_KEYS and ALLOWED_RETURN_URLS from .env, says so, and SIGTERM to node stops it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ob-demo-env-'));
    try {
      const [publicPort, internalPort] = [await freePort(), await freePort()];
      writeFileSync(
        join(dir, '.env'),
        [
          `PORT=${publicPort}`,
          `INTERNAL_PORT=${internalPort}`,
          `INTERNAL_API_KEYS=${USER_KEY},another-key-of-the-users-0123456789abcdef`,
          `ALLOWED_RETURN_URLS=${USER_RETURN}`,
          `REDIS_URL=${redis.url}`,
        ].join('\n'),
      );
      // node directly, from the folder holding .env (dotenv reads the working directory's).
      const demo = await start([process.execPath, join(ROOT, 'dist', 'demo', 'main.js')], {
        cwd: dir,
        ports: [publicPort, internalPort],
      });
      const out = demo.output();
      expect(out).toMatch(new RegExp(`PORT +${publicPort} +\\[from your environment or \\.env\\]`));
      expect(out).toMatch(
        new RegExp(`INTERNAL_PORT +${internalPort} +\\[from your environment or \\.env\\]`),
      );
      expect(out).toMatch(/INTERNAL_API_KEYS +yours \(2 keys; .*\[from your environment or \.env\]/);
      expect(out).toMatch(new RegExp(`ALLOWED_RETURN_URLS +${USER_RETURN} \\(and the demo's own`));
      expect(out).toMatch(/SESSION_SECRET +generated for this run +\[unset\]/);
      expect(out).not.toContain(USER_KEY);

      // The user's key is the key; no other is.
      const session = (returnTo: string, key = USER_KEY) =>
        fetch(`http://127.0.0.1:${internalPort}/internal/connect-sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ provider: 'sandbox', connection_id: 'someone', return_to: returnTo }),
        });
      expect((await session(`${USER_RETURN}/done`)).status).toBe(201);
      expect((await session(`http://localhost:${publicPort}/demo/done`)).status).toBe(201);
      const elsewhere = await session('http://127.0.0.1:9/other');
      expect(elsewhere.status).toBe(400);
      expect((await session(`${USER_RETURN}/done`, 'x'.repeat(40))).status).toBe(401);
      expect(await client.dbsize()).toBeGreaterThan(0);

      process.kill(demo.child.pid!, 'SIGTERM');
      expect(await demo.exited).toEqual({ code: 0, signal: null });
      await expectGone(demo);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('generates what is unset and says so', async () => {
    const demo = await start([process.execPath, join(ROOT, 'dist', 'demo', 'main.js')], { cwd: tmpdir() });
    const out = demo.output();
    expect(out).toMatch(/INTERNAL_API_KEYS +generated for this run .*\[unset\]/);
    expect(out).toMatch(new RegExp(`PORT +${demo.publicPort} +\\[from your environment or \\.env\\]`));
    expect(out).toMatch(/ALLOWED_RETURN_URLS +http:\/\/localhost:\d+\/demo \(the demo's own\) +\[unset\]/);
    await makeKeys(demo, generatedKey(demo));
    process.kill(demo.child.pid!, 'SIGINT');
    await expectGone(demo);
  }, 120_000);

  it('npm run demo: SIGTERM to npm stops node too and removes the keys', async () => {
    const demo = await start(['npm', 'run', 'demo']);
    await makeKeys(demo, generatedKey(demo));
    const members = await groupMembers(demo.child.pid!);
    expect(members.some((m) => m.includes('dist/demo/main.js'))).toBe(true);
    process.kill(demo.child.pid!, 'SIGTERM');
    await expectGone(demo);
  }, 120_000);

  it('npm run demo: Ctrl-C (SIGINT to the whole group) stops it and removes the keys', async () => {
    const demo = await start(['npm', 'run', 'demo']);
    await makeKeys(demo, generatedKey(demo));
    process.kill(-demo.child.pid!, 'SIGINT');
    await expectGone(demo);
  }, 120_000);

  it('npm run demo: SIGTERM to the node process (its printed pid) stops it, npm ends, and the keys go', async () => {
    const demo = await start(['npm', 'run', 'demo']);
    await makeKeys(demo, generatedKey(demo));
    const pid = Number(/Process id: (\d+)\./.exec(demo.output())![1]);
    expect((await groupMembers(demo.child.pid!)).find((m) => m.startsWith(`${pid} `))).toContain(
      'dist/demo/main.js',
    );
    process.kill(pid, 'SIGTERM');
    await expectGone(demo);
  }, 120_000);

  it('npm run demo: npm killed outright (SIGKILL, nothing passed on) still stops node and removes the keys', async () => {
    const demo = await start(['npm', 'run', 'demo']);
    await makeKeys(demo, generatedKey(demo));
    process.kill(demo.child.pid!, 'SIGKILL');
    await expectGone(demo);
  }, 120_000);
});
