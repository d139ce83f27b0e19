import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './free-port';
import { redisServerArgs } from './redis-server';

/**
 * Pieces for checking the contract from outside: redis-servers the broker must reach as an
 * operator would configure them (TLS, a password), `node dist/main.js` run to its exit, idle
 * keep-alive sockets, and a full dump of what sits in a Redis.
 */

const MAIN = join(resolve(__dirname, '../..'), 'dist', 'main.js');

/** A self-signed CA and a server certificate for 127.0.0.1 / localhost, made with openssl. */
export interface TlsMaterial {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

export function makeTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'ob-tls-'));
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void =>
    void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    '-new',
    ...ec,
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=oauth-broker test CA',
  );
  openssl(
    'req',
    '-new',
    ...ec,
    '-keyout',
    at('server.key'),
    '-out',
    at('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(
    at('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.crt'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-out',
    at('server.crt'),
    '-days',
    '2',
    '-extfile',
    at('server.ext'),
  );
  return { dir, caFile: at('ca.crt'), certFile: at('server.crt'), keyFile: at('server.key') };
}

/** The redis-server options that serve TLS with `material` (clients are not asked for certificates). */
export function redisTlsArgs(material: TlsMaterial): string[] {
  return [
    '--tls-cert-file',
    material.certFile,
    '--tls-key-file',
    material.keyFile,
    '--tls-ca-cert-file',
    material.caFile,
    '--tls-auth-clients',
    'no',
  ];
}

/** A redis-server started with whatever arguments a test needs (TLS, requirepass …). */
export class RedisProcess {
  readonly dir = mkdtempSync(join(tmpdir(), 'ob-redis-'));
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  /**
   * `portArgs(port)` names the port options (`--port P`, or `--port 0 --tls-port P`); waits
   * until the port accepts TCP connections. `options.config` writes a configuration file into
   * the server's folder and answers its path (a sentinel needs one); `options.port` picks the port.
   */
  static async start(
    portArgs: (port: number) => string[],
    extra: string[] = [],
    options: { port?: number; config?: (port: number, dir: string) => string } = {},
  ): Promise<RedisProcess> {
    const port = options.port ?? (await freePort());
    const redis = new RedisProcess(port, [...portArgs(port), ...extra]);
    const leading = options.config ? [options.config(port, redis.dir)] : [];
    redis.child = spawn('redis-server', [...leading, ...redisServerArgs(redis.dir, redis.args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    for (const stream of [redis.child.stdout!, redis.child.stderr!]) {
      stream.setEncoding('utf8').on('data', (c: string) => {
        if (output.length < 4000) output += c;
      });
    }
    const exited = new Promise<never>((_, fail) =>
      redis.child!.once('exit', (code) =>
        fail(new Error(`redis-server exited (${code}) before listening: ${output.slice(0, 500)}`)),
      ),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForTcp(port, 5000), exited]);
    return redis;
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((done) => {
        child.once('exit', () => done());
        child.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function waitForTcp(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((done) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `node dist/main.js` with exactly this environment (plus PATH), run until it exits. */
export function runBrokerToExit(env: Record<string, string>, timeoutMs = 15_000): Promise<ExitResult> {
  return runCommand(process.execPath, [MAIN], env, undefined, timeoutMs);
}

/**
 * Any command with exactly this environment (plus PATH), run to its exit; in a fresh empty
 * directory unless `cwd` is given, so no `.env` is read by accident.
 */
export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
  timeoutMs = 30_000,
): Promise<ExitResult> {
  const dir = cwd ?? mkdtempSync(join(tmpdir(), 'ob-run-'));
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (!cwd) rmSync(dir, { recursive: true, force: true });
      done({ code, signal, stdout, stderr });
    });
  });
}

/** A plain TCP listener that only counts who connects (a "Redis" nobody should reach). */
export async function connectionCounter(): Promise<{
  port: number;
  count: () => number;
  close: () => Promise<void>;
}> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  return {
    port: (server.address() as net.AddressInfo).port,
    count: () => count,
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}

/**
 * An HTTP/1.1 keep-alive connection that made one request and now sits idle; `closed` settles
 * when the server closes it.
 */
export async function idleKeepAlive(
  baseUrl: string,
  path: string,
): Promise<{ status: number; closed: Promise<void>; socket: net.Socket }> {
  const url = new URL(baseUrl);
  const socket = net.connect(Number(url.port), url.hostname);
  const closed = new Promise<void>((done) => socket.once('close', () => done()));
  socket.on('error', () => undefined);
  let head = '';
  const status = await new Promise<number>((done, fail) => {
    socket.once('connect', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m && head.includes('\r\n\r\n')) done(Number(m[1]));
    });
    socket.once('close', () => fail(new Error('closed before answering')));
  });
  return { status, closed, socket };
}

/** Every key of a Redis with its value as text (strings, hashes, sets, sorted sets, lists). */
export async function dumpRedis(redis: Redis): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value = '';
      if (type === 'string') value = (await redis.get(key)) ?? '';
      else if (type === 'hash') value = JSON.stringify(await redis.hgetall(key));
      else if (type === 'set') value = (await redis.smembers(key)).join('\n');
      else if (type === 'zset') value = (await redis.zrange(key, 0, -1, 'WITHSCORES')).join('\n');
      else if (type === 'list') value = (await redis.lrange(key, 0, -1)).join('\n');
      else value = `(${type})`;
      out.set(key, value);
    }
  } while (cursor !== '0');
  return out;
}
