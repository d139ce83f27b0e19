import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { providerEnv } from '../helpers/broker-harness';
import { BrokerProcess } from '../helpers/broker-process';
import { RedisProcess, TlsMaterial, makeTlsMaterial, redisTlsArgs } from '../helpers/contract-process';
import { TestRedisCluster } from '../helpers/redis-cluster';
import {
  CONTRACT_DEFAULTS,
  expectProblem,
  useContractSuite,
  removeTlsMaterial,
  roundTrip as contractRoundTrip,
} from '../helpers/contract-suite';

/**
 * The Redis an operator may point the built broker at (docs/configuration.md, REDIS_*): TLS
 * through rediss://, a password in REDIS_URL, and Sentinel and Cluster taking the password and TLS
 * setting from REDIS_URL; each checked with a connect and token round trip.
 */
describe('contract, from outside on node dist/main.js: the Redis URLs an operator may give', () => {
  const suite = useContractSuite(0);
  let tls: TlsMaterial | undefined;
  const clusters: TestRedisCluster[] = [];
  const roundTrip = (broker: BrokerProcess, id: string) => contractRoundTrip(broker, suite.fake, id);

  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.close()));
    removeTlsMaterial(tls);
  });

  describe('Redis URLs an operator may give', () => {
    it('works over rediss:// (TLS) with the CA given through NODE_EXTRA_CA_CERTS: connect and token round trip', async () => {
      tls ??= makeTlsMaterial();
      const material = tls;
      let server: RedisProcess;
      try {
        server = await RedisProcess.start(
          (port) => ['--port', '0', '--tls-port', String(port)],
          redisTlsArgs(material),
        );
      } catch (error) {
        console.log(
          `skipped the rediss:// check: this redis-server does not serve TLS (${(error as Error).message.slice(0, 200)})`,
        );
        return;
      }
      suite.redisProcesses.push(server);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `rediss://127.0.0.1:${server.port}`,
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
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
      suite.redisProcesses.push(server);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `redis://:${encodeURIComponent(password)}@127.0.0.1:${server.port}`,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-password');

      // A wrong password: alive, not ready, 503 store_unavailable, and neither password printed.
      const wrong = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_URL: `redis://:${encodeURIComponent('wrong-PASSWORD-x')}@127.0.0.1:${server.port}`,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(wrong);
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
      suite.redisProcesses.push(master);
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
      suite.redisProcesses.push(sentinel);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
        REDIS_SENTINEL_NAME: 'obpass',
        // Port 9 serves no Redis: only the sentinel's answer may decide where the master is.
        REDIS_URL: `redis://:${password}@127.0.0.1:9`,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-sentinel');
      expect(broker.stdout + broker.stderr).not.toContain(password);
      await broker.stop('SIGKILL');
    });

    it('reaches every master of REDIS_CLUSTER_NODES with the password of REDIS_URL', async () => {
      const password = 'cluster-PASS';
      const cluster = await TestRedisCluster.start(3, { password });
      clusters.push(cluster);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_CLUSTER_NODES: cluster.nodesEnv,
        REDIS_URL: `redis://:${password}@127.0.0.1:9`,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      // Several connections, so their keys land on more than one master.
      for (const id of ['acct-cluster-1', 'acct-cluster-2', 'acct-cluster-3']) await roundTrip(broker, id);
      expect(broker.stdout + broker.stderr).not.toContain(password);
      await broker.stop('SIGKILL');
    });
  });

  describe('Sentinel and Cluster: a rediss:// REDIS_URL still turns TLS on', () => {
    let material: TlsMaterial;
    const tlsArgs = (): string[] => redisTlsArgs(material);

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
      suite.redisProcesses.push(master);
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
      suite.redisProcesses.push(sentinel);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
        REDIS_SENTINEL_NAME: 'obtls',
        REDIS_URL: 'rediss://127.0.0.1:9',
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      await roundTrip(broker, 'acct-sentinel-tls');
      await broker.stop('SIGKILL');
    });

    it('talks TLS to every master of REDIS_CLUSTER_NODES', async () => {
      if (!supported) return;
      const cluster = await TestRedisCluster.start(3, { tls: material });
      clusters.push(cluster);
      const broker = await BrokerProcess.start({
        ...CONTRACT_DEFAULTS,
        REDIS_CLUSTER_NODES: cluster.nodesEnv,
        REDIS_URL: 'rediss://127.0.0.1:9',
        NODE_EXTRA_CA_CERTS: material.caFile,
        ...providerEnv('jobber', suite.fake.url),
      });
      suite.others.push(broker);
      expect((await fetch(`${broker.internalUrl}/readyz`)).status).toBe(200);
      for (const id of ['acct-tls-cluster-1', 'acct-tls-cluster-2', 'acct-tls-cluster-3'])
        await roundTrip(broker, id);
      await broker.stop('SIGKILL');
    });
  });
});
