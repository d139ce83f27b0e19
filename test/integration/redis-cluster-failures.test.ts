import Redis from 'ioredis';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedisCluster } from '../helpers/redis-cluster';

interface Answer {
  status: number;
  body: { code?: string };
  headers: Headers;
}

/**
 * A Cluster that moves or loses a master answers `503 store_unavailable` with `Retry-After`,
 * whatever words ioredis wraps the failure in ("Too many Cluster redirections", "Connection is
 * closed", CLUSTERDOWN...): never a 500.
 */
describe('Redis Cluster failures are 503 store_unavailable', () => {
  let cluster: TestRedisCluster;
  let fake: FakeProvider;
  let broker: TestBroker;
  let nodes: Redis[];

  beforeAll(async () => {
    cluster = await TestRedisCluster.start();
    fake = await FakeProvider.start();
    broker = await startTestBroker({
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      ...providerEnv('jobber', fake.url),
    });
    nodes = cluster.ports.map((_, i) => cluster.node(i));
  }, 60_000);

  afterAll(async () => {
    nodes?.forEach((n) => n.disconnect());
    await broker?.close();
    await fake?.close();
    await cluster?.close();
  });

  function expectStoreUnavailable(answer: Answer): void {
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'store_unavailable',
    });
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
  }

  /** The index and cluster id of the master serving `slot`, and of another master. */
  async function ownersOf(
    slot: number,
  ): Promise<{ owner: number; ownerId: string; other: number; otherId: string }> {
    const ids = await Promise.all(nodes.map((n) => n.cluster('MYID') as Promise<string>));
    const slots = await nodes[0]!.cluster('SLOTS');
    const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
    const owner = cluster.ports.indexOf(range[2]![1]);
    const other = (owner + 1) % nodes.length;
    return { owner, ownerId: ids[owner]!, other, otherId: ids[other]! };
  }

  it('answers a MOVED redirect storm (two masters pointing at each other) with 503, not 500', async () => {
    // A connection nobody stored: its slot holds no key, so its owner may hand the slot away.
    let id = '';
    let slot = -1;
    for (let i = 0; slot < 0; i++) {
      const candidate = `acct-moved-${i}`;
      const s = (await nodes[0]!.cluster('KEYSLOT', `{jobber:${candidate}}`)) as number;
      if (((await nodes[0]!.cluster('COUNTKEYSINSLOT', s)) as number) === 0) {
        id = candidate;
        slot = s;
      }
    }
    const { owner, ownerId, other, otherId } = await ownersOf(slot);
    // The owner now says the slot is the other master's; that master still says it is the owner's.
    await nodes[owner]!.cluster('SETSLOT', slot, 'NODE', otherId);
    try {
      const token = await broker.api(`/internal/connections/jobber/${id}/token`);
      expectStoreUnavailable(token);
      const meta = await broker.api(`/internal/connections/jobber/${id}`);
      expectStoreUnavailable(meta);
      expect(broker.logs.join('')).not.toMatch(/"code":"internal_error"/);
    } finally {
      await nodes[other]!.cluster('SETSLOT', slot, 'NODE', ownerId).catch(() => undefined);
      await nodes[owner]!.cluster('SETSLOT', slot, 'NODE', ownerId).catch(() => undefined);
    }
  }, 60_000);

  it('answers 503 (never 500) for connections on a master that died, and 200 or 503 for the rest', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `acct-dead-${i}`);
    for (const id of ids) {
      const put = await broker.api(`/internal/connections/jobber/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${id}`, expires_in: 3600 },
      });
      expect(put.status).toBe(201);
    }
    const victim = 2;
    const onVictim: string[] = [];
    for (const id of ids) {
      const slot = (await nodes[0]!.cluster('KEYSLOT', `{jobber:${id}}`)) as number;
      if ((await ownersOf(slot)).owner === victim) onVictim.push(id);
    }
    expect(onVictim.length).toBeGreaterThan(0);
    nodes[victim]!.disconnect();
    await cluster.killNode(victim);

    const statuses: number[] = [];
    // Right after the kill (connection refused) and once the cluster has marked it failed
    // (cluster-node-timeout 2 s: CLUSTERDOWN).
    for (const pause of [0, 3000]) {
      await new Promise((r) => setTimeout(r, pause));
      for (const id of onVictim) {
        const token = await broker.api(`/internal/connections/jobber/${id}/token`);
        expectStoreUnavailable(token);
        statuses.push(token.status);
      }
      for (const id of ids.filter((i) => !onVictim.includes(i))) {
        statuses.push((await broker.api(`/internal/connections/jobber/${id}/token`)).status);
      }
    }
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
  }, 90_000);
});
