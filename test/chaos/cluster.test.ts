import { Cluster } from 'ioredis';
import { ChaosCluster } from './chaos-cluster';
import { itKeepsTheGuarantees } from './chaos-guarantees';
import { ChaosRun, runSettings, sleep } from './chaos-run';

/**
 * Redis Cluster (three masters, a replica each): three brokers under load while slots move
 * between masters (`redis-cli --cluster reshard`) and a master crashes so its replica takes over,
 * with a slow provider (refreshes in flight at each fault).
 */
describe('chaos: Redis Cluster reshard and master failover under load', () => {
  const { seed, durationMs } = runSettings(1503, 15);
  let cluster: ChaosCluster;
  let inspect: Cluster;
  let run: ChaosRun;
  const reshards: Array<{ start: number; end: number }> = [];

  beforeAll(async () => {
    cluster = await ChaosCluster.start();
    inspect = new Cluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    inspect.on('error', () => undefined);
    run = new ChaosRun({
      name: 'cluster',
      seed,
      durationMs,
      redisEnv: { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: cluster.nodesEnv },
      queueLength: () => inspect.zcard('chaos:{webhooks}:queue'),
    });
    await run.start();
    run.startLoad();
    do {
      await sleep(1000 + run.rng() * 1000);
      run.providerPhase('slow');
      const start = Date.now();
      run.fault('Cluster reshard', '300 slots between two masters');
      const moved = await cluster.reshard(300, Math.floor(run.rng() * 3));
      reshards.push({ start, end: Date.now() });
      run.log(`reshard ${moved.from} → ${moved.to} took ${moved.ms} ms`);
      // Let every node (the receiving master's replica above all) learn the new owner first: a
      // master killed in that gossip window takes the moved slots down with it, a property of
      // Redis Cluster rather than of the broker (seen once: a killed receiver, restarted empty,
      // came back owning the 300 slots).
      await cluster.waitForHealthy(15_000);
      await sleep(1500);
      // Refreshes at the (slow) provider while a master dies and its replica takes over.
      const inFlight = run.refreshBurst(8);
      await sleep(300);
      run.fault('Cluster master SIGKILL', 'its replica takes over');
      const failover = await cluster.killMaster(Math.floor(run.rng() * 3));
      run.log(`master ${failover.port} killed; ${failover.promoted} serves its slots`);
      await run.measureRecovery('cluster master failover', failover.at);
      await inFlight;
      run.providerPhase('normal');
      await cluster.restartNode(failover.port);
      await cluster.waitForHealthy(30_000);
      await sleep(1000);
    } while (run.elapsed() < durationMs - 15_000);
    await sleep(Math.max(0, durationMs - run.elapsed()));
    await run.stopLoad();
    await run.heal();
    await run.verify();
  }, durationMs + 180_000);

  afterAll(async () => {
    inspect?.disconnect();
    await run?.close();
    await cluster?.close();
  });

  itKeepsTheGuarantees(() => run, 'the replica taking over');

  it('moves slots without the callers seeing it (no 503 while a reshard runs)', () => {
    const during = run.samples.filter(
      (s) => s.status === 503 && reshards.some((r) => s.start >= r.start && s.end <= r.end),
    );
    expect(during.map((s) => `${s.op} on process ${s.slot}: 503 ${s.code ?? ''}`)).toEqual([]);
  });
});
