import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';
import { ConcurrencyRecordingReceiver } from '../helpers/webhook-receiver';

/**
 * An event is emitted after the change it reports is made; when Redis is away at that moment (a
 * restart, a failover), the event must still be queued once Redis is back, and delivered.
 */
describe('webhooks: an event emitted while Redis is away', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let receiver: ConcurrencyRecordingReceiver;
  let broker: TestBroker;

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start();
    receiver = await ConcurrencyRecordingReceiver.start(0);
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: 'webhook-outage-secret-0123456789abcdef',
      ...providerEnv('bonjoro', fake.url),
    });
    broker.broker.webhooks!.start();
  });

  afterAll(async () => {
    await broker?.close();
    await receiver?.close();
    await fake?.close();
    await redis?.close();
  });

  it('is queued once Redis answers again, and delivered once', async () => {
    await redis.stop();
    broker.broker.webhooks!.emit({
      type: 'connection.deleted',
      provider: 'bonjoro',
      connection_id: 'gone-1',
      end_user: null,
      tags: {},
    });
    await new Promise((r) => setTimeout(r, 1500));
    await redis.startProcess();
    await until(
      () => (receiver.delivered.some((e) => e.connection_id === 'gone-1') ? true : undefined),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.delivered.filter((e) => e.connection_id === 'gone-1')).toHaveLength(1);
  }, 30_000);
});
