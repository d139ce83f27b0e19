import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './free-port';
import { redisServerArgs, waitForPing } from './redis-server';

export const SENTINEL_MASTER_NAME = 'obmaster';

/**
 * A private Sentinel deployment on free loopback ports: one master, one replica, one sentinel
 * (quorum 1, down after 1 s), no persistence. `failover()` asks the sentinel to promote the
 * replica; `killMaster()` crashes the master so the sentinel must notice and fail over itself.
 */
export class TestRedisSentinel {
  private readonly servers = new Map<number, ChildProcess>();
  private sentinel?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'ob-sentinel-'));

  private constructor(
    readonly dataPorts: [number, number],
    readonly sentinelPort: number,
  ) {}

  static async start(): Promise<TestRedisSentinel> {
    const deployment = new TestRedisSentinel([await freePort(), await freePort()], await freePort());
    try {
      await deployment.boot();
    } catch (error) {
      await deployment.close();
      throw error;
    }
    return deployment;
  }

  /** REDIS_SENTINELS for the broker. */
  get sentinelsEnv(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  /** The port the sentinel currently names as master. */
  async masterPort(): Promise<number> {
    const client = this.sentinelClient();
    try {
      const [, port] = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME)) as [
        string,
        string,
      ];
      return Number(port);
    } finally {
      client.disconnect();
    }
  }

  /** A plain client on the current master, for assertions. */
  async masterClient(): Promise<Redis> {
    return new Redis({ host: '127.0.0.1', port: await this.masterPort(), maxRetriesPerRequest: 1 });
  }

  sentinelClient(): Redis {
    return new Redis({ host: '127.0.0.1', port: this.sentinelPort, maxRetriesPerRequest: 1 });
  }

  /**
   * Waits until a replica has every write of the master and the sentinel counts it as healthy,
   * so a failover now loses nothing (after a failover the old master must resync first).
   */
  async waitForReplicaInSync(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const master = await this.masterClient();
    try {
      for (;;) {
        const acked = (await master.call('WAIT', '1', '500')) as number;
        if (acked >= 1) break;
        if (Date.now() > deadline) throw new Error('no replica acknowledged the writes');
      }
    } finally {
      master.disconnect();
    }
    await this.waitForSentinelToSeeReplica(Math.max(1000, deadline - Date.now()));
  }

  /**
   * Forces a failover (SENTINEL FAILOVER) and resolves with the new master's port and the time
   * the sentinel named it (ms since epoch), once the sentinel names it.
   */
  async failover(timeoutMs = 15_000): Promise<{ port: number; at: number }> {
    const before = await this.masterPort();
    const client = this.sentinelClient();
    try {
      await client.call('SENTINEL', 'FAILOVER', SENTINEL_MASTER_NAME);
    } finally {
      client.disconnect();
    }
    const promoted = await this.waitForNewMaster(before, timeoutMs);
    // The sentinel turns the old master into a replica only when it next looks (up to 10 s);
    // do now what it would do then, so the deployment has a replica again at once.
    const old = new Redis({ host: '127.0.0.1', port: before, maxRetriesPerRequest: 1 });
    try {
      await old.call('REPLICAOF', '127.0.0.1', String(promoted.port));
    } finally {
      old.disconnect();
    }
    return promoted;
  }

  /** Crashes the master (SIGKILL); answers the port it had. */
  async killMaster(): Promise<number> {
    const port = await this.masterPort();
    await this.stopServer(port);
    return port;
  }

  /** Restarts a stopped data node as a replica of the current master. */
  async restartAsReplica(port: number): Promise<void> {
    const master = await this.masterPort();
    this.startServer(port, master);
    await waitForPing(port, 5000);
  }

  /** Polls the sentinel until it names a master other than `previous`. */
  async waitForNewMaster(previous: number, timeoutMs = 15_000): Promise<{ port: number; at: number }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const port = await this.masterPort().catch(() => previous);
      if (port !== previous) return { port, at: Date.now() };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the sentinel named no new master in time');
  }

  async close(): Promise<void> {
    const children = [...this.servers.values(), ...(this.sentinel ? [this.sentinel] : [])];
    await Promise.all(children.map(kill));
    this.servers.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async boot(): Promise<void> {
    const [masterPort, replicaPort] = this.dataPorts;
    this.startServer(masterPort);
    await waitForPing(masterPort, 5000);
    this.startServer(replicaPort, masterPort);
    await waitForPing(replicaPort, 5000);
    await this.waitForLink(replicaPort, 10_000);

    const conf = join(this.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${this.sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 3000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
        '',
      ].join('\n'),
    );
    this.sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitForPing(this.sentinelPort, 5000);
    await this.waitForSentinelToSeeReplica(10_000);
  }

  private startServer(port: number, replicaOf?: number): void {
    const args = ['--port', String(port), ...redisServerArgs(this.dir)];
    if (replicaOf) args.push('--replicaof', '127.0.0.1', String(replicaOf));
    this.servers.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
  }

  private async stopServer(port: number): Promise<void> {
    const child = this.servers.get(port);
    if (child) await kill(child);
    this.servers.delete(port);
  }

  private async waitForLink(replicaPort: number, timeoutMs: number): Promise<void> {
    const client = new Redis({ host: '127.0.0.1', port: replicaPort, maxRetriesPerRequest: 1 });
    try {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const info = (await client.info('replication')) as string;
        if (/master_link_status:up/.test(info)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the replica did not sync with the master');
    } finally {
      client.disconnect();
    }
  }

  /** A failover needs a replica the sentinel knows of (it learns them from the master's INFO). */
  private async waitForSentinelToSeeReplica(timeoutMs: number): Promise<void> {
    const client = this.sentinelClient();
    try {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const replicas = (await client
          .call('SENTINEL', 'REPLICAS', SENTINEL_MASTER_NAME)
          .catch(() => [])) as string[][];
        const ok = replicas.some((fields) => {
          // master-link-status is refreshed only every 10 s; the caller's WAIT proves the link.
          const flags = fields[fields.indexOf('flags') + 1] ?? '';
          return /slave/.test(flags) && !/s_down|disconnected|promoted/.test(flags);
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the sentinel did not discover the replica');
    } finally {
      client.disconnect();
    }
  }
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
