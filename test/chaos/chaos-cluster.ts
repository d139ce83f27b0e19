import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { freePort } from '../helpers/free-port';
import { waitForPing } from '../helpers/redis-server';

const run = promisify(execFile);

interface NodeInfo {
  id: string;
  port: number;
  master: boolean;
  /** The master's id, for a replica. */
  masterId?: string;
  failed: boolean;
  slots: number;
}

/**
 * A private Redis Cluster of three masters with a replica each (cluster-node-timeout 2 s), for
 * the faults a cluster takes in production: a master crashes and its replica takes over; slots
 * move from one master to another (`redis-cli --cluster reshard`) while clients write.
 */
export class ChaosCluster {
  private readonly processes = new Map<number, ChildProcess>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'ob-chaos-cluster-'));

  private constructor(readonly ports: number[]) {}

  static async start(): Promise<ChaosCluster> {
    const ports: number[] = [];
    while (ports.length < 6) {
      // The cluster bus listens on port + 10000: both must be free.
      const port = await freePort(32_767 - 10_000);
      if (!ports.includes(port) && (await isFree(port + 10000))) ports.push(port);
    }
    const cluster = new ChaosCluster(ports);
    try {
      for (const port of ports) cluster.startNode(port);
      await Promise.all(ports.map((p) => waitForPing(p, 5000)));
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '1',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.waitForHealthy(30_000);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  get nodesEnv(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /** The cluster's view from a node that answers. */
  async nodes(): Promise<NodeInfo[]> {
    for (const port of this.ports) {
      if (!this.processes.has(port)) continue;
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true });
      try {
        await client.connect();
        const text = (await client.cluster('NODES')) as string;
        return text
          .trim()
          .split('\n')
          .map((line) => {
            const f = line.split(' ');
            const slots = f.slice(8).reduce((n, range) => {
              if (range.startsWith('[')) return n;
              const [a, b] = range.split('-').map(Number);
              return n + (b === undefined ? 1 : b - a! + 1);
            }, 0);
            return {
              id: f[0]!,
              port: Number(f[1]!.split(':')[1]!.split('@')[0]),
              master: f[2]!.includes('master'),
              masterId: f[3] === '-' ? undefined : f[3],
              failed: /fail/.test(f[2]!),
              slots,
            };
          });
      } catch {
        // try the next node
      } finally {
        client.disconnect();
      }
    }
    throw new Error('no cluster node answers');
  }

  /** Every node alive says cluster_state:ok, and every master serving slots has a live replica. */
  async waitForHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.healthy()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the cluster did not become healthy in time');
  }

  /**
   * Crashes a master (SIGKILL) and resolves when its replica serves its slots and the cluster
   * says ok again: `at` is that moment (ms since epoch).
   */
  async killMaster(pick: number): Promise<{ port: number; promoted: number; at: number }> {
    const masters = (await this.nodes()).filter((n) => n.master && n.slots > 0 && !n.failed);
    const victim = masters[pick % masters.length]!;
    const replica = (await this.nodes()).find((n) => n.masterId === victim.id)!;
    await this.stopNode(victim.port);
    const deadline = Date.now() + 30_000;
    const client = new Redis({ port: replica.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      while (Date.now() < deadline) {
        const info = (await client.info('replication').catch(() => '')) as string;
        const state = (await client.cluster('INFO').catch(() => '')) as string;
        if (/role:master/.test(info) && /cluster_state:ok/.test(state))
          return { port: victim.port, promoted: replica.port, at: Date.now() };
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      client.disconnect();
    }
    throw new Error('the replica did not take over in time');
  }

  /** Starts a crashed node again: it rejoins as a replica of the master that replaced it. */
  async restartNode(port: number): Promise<void> {
    this.startNode(port);
    await waitForPing(port, 5000);
  }

  /** Moves `slots` slots from one master to another with `redis-cli --cluster reshard`, keys and all. */
  async reshard(slots: number, pick: number): Promise<{ from: number; to: number; ms: number }> {
    const masters = (await this.nodes()).filter((n) => n.master && n.slots > 0 && !n.failed);
    const from = masters[pick % masters.length]!;
    const to = masters[(pick + 1) % masters.length]!;
    const started = Date.now();
    await run(
      'redis-cli',
      [
        '--cluster',
        'reshard',
        `127.0.0.1:${to.port}`,
        '--cluster-from',
        from.id,
        '--cluster-to',
        to.id,
        '--cluster-slots',
        String(slots),
        '--cluster-yes',
        '--cluster-pipeline',
        '20',
      ],
      { timeout: 60_000 },
    );
    return { from: from.port, to: to.port, ms: Date.now() - started };
  }

  async close(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((p) => this.stopNode(p)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async healthy(): Promise<boolean> {
    try {
      const nodes = await this.nodes();
      const masters = nodes.filter((n) => n.master && n.slots > 0);
      if (masters.some((m) => m.failed)) return false;
      if (masters.reduce((n, m) => n + m.slots, 0) !== 16384) return false;
      if (!masters.every((m) => nodes.some((n) => n.masterId === m.id && !n.failed))) return false;
      for (const port of this.processes.keys()) {
        const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
        try {
          const info = (await client.cluster('INFO')) as string;
          if (!/cluster_state:ok/.test(info)) return false;
        } finally {
          client.disconnect();
        }
      }
      return true;
    } catch {
      return false;
    }
  }

  private startNode(port: number): void {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    this.processes.set(port, child);
  }

  private async stopNode(port: number): Promise<void> {
    const child = this.processes.get(port);
    this.processes.delete(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
