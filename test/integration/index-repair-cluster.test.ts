import { Cluster } from 'ioredis';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedisCluster } from '../helpers/redis-cluster';

/**
 * On Cluster the index and the schedule live on other masters than a connection's record, so a
 * master's outage between the writes can leave a record outside both. The repair finds records by
 * SCAN on every master and puts their entries back; the listing then shows them all again.
 */
describe('index and schedule repair on Redis Cluster (three masters)', () => {
  let cluster: TestRedisCluster;
  let fake: FakeProvider;
  let broker: TestBroker;
  let inspect: Cluster;

  beforeAll(async () => {
    cluster = await TestRedisCluster.start();
    fake = await FakeProvider.start({ rotateRefreshTokens: true });
    broker = await startTestBroker({
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      KEEPALIVE_AFTER: '3600',
      ...providerEnv('bexio', fake.url),
    });
    inspect = cluster.client();
  }, 60_000);

  afterAll(async () => {
    await broker?.close();
    inspect?.disconnect();
    await fake?.close();
    await cluster?.close();
  });

  it('finds records on every master and puts back their index and schedule entries', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `spread-${i}`);
    for (const id of ids) {
      const minted = fake.mint();
      const res = await broker.api(`/internal/connections/bexio/${id}`, {
        method: 'PUT',
        body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
      });
      expect(res.status).toBe(201);
    }
    // Records on more than one master: the SCAN must visit them all.
    const masters = new Set<string>();
    for (const node of inspect.nodes('master')) {
      const [, keys] = await node.scan('0', 'MATCH', 'ob:{bexio:*}:conn', 'COUNT', 1000);
      if (keys.length > 0) masters.add(`${node.options.host}:${node.options.port}`);
    }
    expect(masters.size).toBeGreaterThan(1);
    const lost = ids.filter((_, i) => i % 3 === 0);
    for (const id of lost) {
      await inspect.zrem('ob:connections', `bexio:${id}`);
      await inspect.zrem('ob:schedule', `bexio:${id}`);
    }

    const repaired = await broker.broker.connections.repairIfDue(60_000);
    expect(repaired).toEqual({ records: 30, indexAdded: lost.length, scheduleAdded: lost.length });
    const listed = await broker.api('/internal/connections?provider=bexio&limit=100');
    expect(listed.body.connections).toHaveLength(30);
    for (const id of lost) expect(await inspect.zscore('ob:schedule', `bexio:${id}`)).not.toBeNull();
    // Another process finds the repair taken for the period.
    expect(await broker.broker.connections.repairIfDue(60_000)).toBeNull();
  }, 60_000);
});
