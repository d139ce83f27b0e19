import { TestRedis, waitForPing } from '../helpers/redis-server';
import { itKeepsTheGuarantees } from './chaos-guarantees';
import { ChaosRun, runSettings, sleep } from './chaos-run';

/**
 * Standalone Redis with AOF (`appendfsync always`) and process faults: three brokers under load
 * through a provider that turns slow and then fails, rolling restarts (SIGTERM), crashes
 * (SIGKILL) of random brokers, and Redis itself killed and restarted from its AOF.
 */
describe('chaos: standalone Redis (AOF), process faults, provider trouble', () => {
  const { seed, durationMs } = runSettings(1501, 25);
  let redis: TestRedis;
  let run: ChaosRun;

  beforeAll(async () => {
    redis = await TestRedis.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    run = new ChaosRun({
      name: 'standalone',
      seed,
      durationMs,
      redisEnv: { REDIS_URL: redis.url },
      queueLength: async () => {
        const client = redis.client();
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
      await sleep(1000 + run.rng() * 1000);
      // A slow provider while brokers restart and Redis dies: refreshes are in flight at each fault.
      run.providerPhase('slow');
      await run.rollingRestart();
      await sleep(500);
      // Refreshes at the (slow) provider when Redis dies: their answers come while it is down.
      const inFlight = run.refreshBurst(6);
      await sleep(300);
      run.fault('SIGKILL redis', 'restarted from its AOF after 1.5 s');
      const down = Date.now();
      await redis.stop();
      await sleep(1500);
      await redis.startProcess();
      await waitForPing(redis.port, 5000);
      run.storeOutage(down, Date.now());
      await run.measureRecovery('redis restart', Date.now());
      await inFlight;
      run.providerPhase('failing');
      await run.sigkill(run.pickSlot(), 300 + run.rng() * 700);
      await sleep(1500);
      run.providerPhase('normal');
      await run.sigkill(run.pickSlot(), 300);
      await sleep(1500);
    } while (run.elapsed() < durationMs - 15_000);
    await sleep(Math.max(0, durationMs - run.elapsed()));
    await run.stopLoad();
    await run.heal();
    await run.verify();
  }, durationMs + 180_000);

  afterAll(async () => {
    await run?.close();
    await redis?.close();
  });

  itKeepsTheGuarantees(() => run, 'Redis answering');
});
