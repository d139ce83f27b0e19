import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { baseEnv } from './broker-harness';
import { TestBrowser, callbackQueryFor, openConnectLink } from './browser';
import { freePort } from './free-port';
import { ApiAnswer, ApiInit, callApi, requestConnectLink } from './internal-api';

export { callApi };
export type { ApiAnswer };

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist', 'main.js');
const CLIENT_DIR = join(ROOT, 'packages', 'client');
const CLIENT_MAIN = join(CLIENT_DIR, 'dist', 'index.js');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** The newest modification time under a folder (ms). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** A build output that exists and is newer than every file of its sources. */
function builtFrom(output: string, sources: string): boolean {
  return existsSync(output) && statSync(output).mtimeMs >= newestMtime(sources);
}

/**
 * Builds dist/ (and the client package's dist/, which the demo loads through the workspace link)
 * when it is missing or older than its sources (once across parallel test files: a lock directory
 * serialises the builds, and whoever comes second finds dist fresh).
 */
export async function ensureBuilt(timeoutMs = 120_000): Promise<void> {
  const clientFresh = (): boolean => builtFrom(CLIENT_MAIN, join(CLIENT_DIR, 'src'));
  const fresh = (): boolean => clientFresh() && builtFrom(MAIN, join(ROOT, 'src'));
  if (fresh()) return;
  const lock = join(
    tmpdir(),
    `ob-build-lock-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('timed out waiting for another build');
      // A lock older than the timeout belongs to a build that died.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > timeoutMs) rmdirSync(lock);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (fresh()) return;
    if (!clientFresh())
      await run(process.execPath, [TSC, '-p', join(CLIENT_DIR, 'tsconfig.build.json')], {
        cwd: CLIENT_DIR,
        timeout: timeoutMs,
      });
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: timeoutMs }).catch(
      (error: { stdout?: string }) => {
        // tsc emits despite type errors (someone's edit in progress elsewhere); only a missing
        // dist/main.js stops the tests.
        if (!existsSync(MAIN))
          throw new Error(`npm run build failed:\n${String(error.stdout ?? '').slice(0, 2000)}`);
      },
    );
  } finally {
    rmdirSync(lock);
  }
}

export interface StartOptions {
  publicPort?: number;
  internalPort?: number;
  /** Waits for /healthz this long (ms). */
  readyTimeoutMs?: number;
  /** Working directory (where a `.env` would be read); `/` by default. */
  cwd?: string;
}

/**
 * A real broker process (`node dist/main.js`) on loopback ports, with the test environment
 * plus what the test passes; its output is captured for assertions.
 */
export class BrokerProcess {
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly publicUrl: string,
    readonly internalUrl: string,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((done) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        done();
      }),
    );
  }

  static async start(
    env: Record<string, string | undefined>,
    options: StartOptions = {},
  ): Promise<BrokerProcess> {
    const publicPort = options.publicPort ?? (await freePort());
    const internalPort = options.internalPort ?? (await freePort());
    const fullEnv: Record<string, string> = {};
    const merged = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...baseEnv(publicPort),
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(publicPort),
      INTERNAL_HOST: '127.0.0.1',
      INTERNAL_PORT: String(internalPort),
      ...env,
    };
    for (const [k, v] of Object.entries(merged)) if (v !== undefined) fullEnv[k] = v;
    // cwd outside the project so no .env file there leaks into the test's environment.
    const child = spawn(process.execPath, [MAIN], {
      env: fullEnv,
      cwd: options.cwd ?? '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const broker = new BrokerProcess(
      child,
      `http://127.0.0.1:${publicPort}`,
      `http://127.0.0.1:${internalPort}`,
    );
    try {
      await broker.waitForHealth(options.readyTimeoutMs ?? 15_000);
    } catch (error) {
      await broker.kill();
      throw new Error(
        `${(error as Error).message}\nstderr: ${broker.stderr.slice(0, 2000)}\nstdout: ${broker.stdout.slice(0, 2000)}`,
      );
    }
    return broker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** The captured JSON log lines (pino), parsed; other lines are skipped. */
  logs(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }

  async waitForHealth(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`broker exited (${this.exitCode ?? this.exitSignal}) before it was healthy`);
      try {
        const [pub, internal] = await Promise.all([
          fetch(`${this.publicUrl}/healthz`, { signal: AbortSignal.timeout(1000) }),
          fetch(`${this.internalUrl}/readyz`, { signal: AbortSignal.timeout(3000) }),
        ]);
        if (pub.status === 200 && internal.status > 0) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('broker did not answer /healthz in time');
  }

  async api(path: string, init: ApiInit = {}): Promise<ApiAnswer> {
    return callApi(this.internalUrl, path, init);
  }

  /** POST /internal/connect-sessions; answers the link (on this process's PUBLIC_URL). */
  async connectLink(
    provider: string,
    connectionId: string,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    return requestConnectLink(this.internalUrl, provider, connectionId, extra);
  }

  /** Sends a signal and waits for the exit; answers the exit code (null when killed by a signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exitCode;
  }

  /** SIGKILL: a crash, nothing cleaned up. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }

  waitForExit(): Promise<void> {
    return this.exited;
  }
}

/**
 * The browser journey split over processes, as a load balancer might: the link from one, the
 * /auth step on another, the callback on a third. Answers the callback's answer.
 */
export async function connectAcross(
  provider: string,
  connectionId: string,
  steps: { link: BrokerProcess; auth: BrokerProcess; callback: BrokerProcess },
  options: { returnTo?: string; browser?: TestBrowser } = {},
): Promise<{ status: number; location: string | null; body: string; authorizeUrl: URL }> {
  const browser = options.browser ?? new TestBrowser();
  const link = new URL(
    await steps.link.connectLink(
      provider,
      connectionId,
      options.returnTo ? { return_to: options.returnTo } : {},
    ),
  );
  const { authorizeUrl, state } = await openConnectLink(
    browser,
    `${steps.auth.publicUrl}${link.pathname}${link.search}`,
  );
  const query = callbackQueryFor(connectionId, state);
  const callback = await browser.get(`${steps.callback.publicUrl}/callback/${provider}?${query}`);
  return { status: callback.status, location: callback.location, body: callback.body, authorizeUrl };
}
