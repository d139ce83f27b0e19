import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis, { Cluster, RedisOptions } from 'ioredis';
import { TlsMaterial, redisTlsArgs } from './contract-process';
import { freePort } from './free-port';
import { redisServerArgs, waitForPing } from './redis-server';

const run = promisify(execFile);

export interface TestRedisClusterOptions {
  /** Every node requires it (`--requirepass`, and `--masterauth` between nodes). */
  password?: string;
  /** Nodes serve TLS only (`--port 0 --tls-port P`, `--tls-cluster yes`) with this material. */
  tls?: TlsMaterial;
}

/**
 * A private three-master Redis Cluster on free loopback ports (`redis-server --cluster-enabled
 * yes` and `redis-cli --cluster create`), no replicas, no persistence, for one test file;
 * optionally behind a password, or TLS only.
 */
export class TestRedisCluster {
  private readonly processes: ChildProcess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'ob-cluster-'));

  private constructor(
    readonly ports: number[],
    private readonly options: TestRedisClusterOptions,
  ) {}

  static async start(masters = 3, options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
    const ports: number[] = [];
    while (ports.length < masters) {
      // The cluster bus listens on port + 10000: both must be free, and both below the ephemeral range.
      const port = await freePort(32_767 - 10_000);
      if (!ports.includes(port) && (await isFree(port + 10000))) ports.push(port);
    }
    const cluster = new TestRedisCluster(ports, options);
    try {
      await cluster.startNodes();
      await cluster.create();
      await cluster.waitForState(15_000);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** `host:port,host:port,…` for REDIS_CLUSTER_NODES. */
  get nodesEnv(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /** A cluster client for assertions on what sits in Redis. */
  client(): Cluster {
    return new Cluster(
      this.ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { maxRetriesPerRequest: 1, ...this.clientOptions() } },
    );
  }

  /** A plain client on one node (CLUSTER commands, KEYSLOT). */
  node(index = 0): Redis {
    return new Redis({
      host: '127.0.0.1',
      port: this.ports[index]!,
      maxRetriesPerRequest: 1,
      ...this.clientOptions(),
    });
  }

  /** What a client needs to talk to the nodes: the password, the CA. */
  private clientOptions(): RedisOptions {
    const { password, tls } = this.options;
    return {
      ...(password ? { password } : {}),
      ...(tls ? { tls: { ca: readFileSync(tls.caFile) } } : {}),
    };
  }

  /** The same for redis-cli. */
  private cliOptions(): string[] {
    const { password, tls } = this.options;
    return [
      ...(password ? ['-a', password, '--no-auth-warning'] : []),
      ...(tls ? ['--tls', '--cacert', tls.caFile] : []),
    ];
  }

  /** Kills one node (SIGKILL), as a crashed master: its slots have no server until it returns. */
  async killNode(index: number): Promise<void> {
    const child = this.processes[index]!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startNodes(): Promise<void> {
    const { password, tls } = this.options;
    const secured = [
      ...(password ? ['--requirepass', password, '--masterauth', password] : []),
      ...(tls ? ['--tls-cluster', 'yes', ...redisTlsArgs(tls)] : []),
    ];
    for (const port of this.ports) {
      const portArgs = tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
      const child = spawn(
        'redis-server',
        [
          ...portArgs,
          ...redisServerArgs(this.dir, [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(this.dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
            ...secured,
          ]),
        ],
        { stdio: 'ignore' },
      );
      this.processes.push(child);
    }
    await Promise.all(this.ports.map((port) => waitForPing(port, 5000, this.clientOptions())));
  }

  private async create(): Promise<void> {
    await run(
      'redis-cli',
      [
        ...this.cliOptions(),
        '--cluster',
        'create',
        ...this.ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      {
        timeout: 20_000,
      },
    );
  }

  /** Every node says cluster_state:ok and knows every master. */
  private async waitForState(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const clients = this.ports.map(
      (port) => new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, ...this.clientOptions() }),
    );
    try {
      while (Date.now() < deadline) {
        const infos = await Promise.all(
          clients.map((c) => c.cluster('INFO').catch(() => '') as Promise<string>),
        );
        if (
          infos.every(
            (info) =>
              /cluster_state:ok/.test(info) &&
              new RegExp(`cluster_known_nodes:${this.ports.length}\\b`).test(info),
          )
        )
          return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the test cluster did not reach cluster_state:ok');
    } finally {
      clients.forEach((c) => c.disconnect());
    }
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
