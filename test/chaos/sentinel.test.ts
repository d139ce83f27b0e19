import { SENTINEL_MASTER_NAME, TestRedisSentinel } from '../helpers/redis-sentinel';
import { itKeepsTheGuarantees } from './chaos-guarantees';
import { ChaosRun, runSettings, sleep } from './chaos-run';

/**
 * Redis behind Sentinel (a master, a replica, a sentinel): three brokers under load while the
 * sentinel fails the master over, with a slow provider (refreshes in flight at the switch) and a
 * broker restart (SIGTERM).
 */
describe('chaos: Redis Sentinel failover under load', () => {
  const { seed, durationMs } = runSettings(1502, 10);
  let sentinel: TestRedisSentinel;
  let run: ChaosRun;

  beforeAll(async () => {
    sentinel = await TestRedisSentinel.start();
    run = new ChaosRun({
      name: 'sentinel',
      seed,
      durationMs,
      redisEnv: {
        REDIS_URL: 'redis://127.0.0.1:1',
        REDIS_SENTINELS: sentinel.sentinelsEnv,
        REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
      },
      queueLength: async () => {
        const client = await sentinel.masterClient();
        try {
          return await client.zcard('chaos:{webhooks}:queue');
        } finally {
          client.disconnect();
        }
      },
    });
    await run.start();
    run.startLoad();
    do {
      await sleep(1500 + run.rng() * 1000);
      run.providerPhase('slow');
      await sleep(1000);
      await sentinel.waitForReplicaInSync();
      // Refreshes at the (slow) provider while the master changes.
      const inFlight = run.refreshBurst(6);
      await sleep(300);
      run.fault('Sentinel failover', 'SENTINEL FAILOVER');
      const promoted = await sentinel.failover();
      await run.measureRecovery('sentinel failover', promoted.at);
      await inFlight;
      run.providerPhase('normal');
      await run.sigterm(run.pickSlot(), 3);
      await sleep(1000);
    } while (run.elapsed() < durationMs - 10_000);
    await sleep(Math.max(0, durationMs - run.elapsed()));
    await run.stopLoad();
    await run.heal();
    await run.verify();
  }, durationMs + 180_000);

  afterAll(async () => {
    await run?.close();
    await sentinel?.close();
  });

  itKeepsTheGuarantees(() => run, 'the sentinel naming a new master');
});
