import { providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { until } from '../helpers/until';
import { ConcurrencyRecordingReceiver } from '../helpers/webhook-receiver';

/**
 * An event is emitted after the change it reports is made; when Redis is away at that moment (a
 * restart, a failover), the event must still be queued once Redis is back, and delivered.
 */
describe('webhooks: an event emitted while Redis is away', () => {
  let receiver: ConcurrencyRecordingReceiver;
  beforeAll(async () => {
    receiver = await ConcurrencyRecordingReceiver.start(0);
  });
  const t = useBrokerOnRedis((fakeUrl) => ({
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: 'webhook-outage-secret-0123456789abcdef',
    ...providerEnv('bonjoro', fakeUrl),
  }));
  beforeAll(() => t.broker.broker.webhooks!.start());
  // Declared after the fixture: closed once the broker no longer delivers to it.
  afterAll(() => receiver?.close());

  it('is queued once Redis answers again, and delivered once', async () => {
    await t.redis.stop();
    t.broker.broker.webhooks!.emit({
      type: 'connection.deleted',
      provider: 'bonjoro',
      connection_id: 'gone-1',
      end_user: null,
      tags: {},
    });
    await new Promise((r) => setTimeout(r, 1500));
    await t.redis.startProcess();
    await until(
      () => (receiver.delivered.some((e) => e.connection_id === 'gone-1') ? true : undefined),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.delivered.filter((e) => e.connection_id === 'gone-1')).toHaveLength(1);
  }, 30_000);
});
