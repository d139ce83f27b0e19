import { TestBroker, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { RefreshLock } from '../../src/connections/refresh-lock';
import { RedisKeys } from '../../src/connections/redis-keys';

/**
 * docs/security.md (refresh lock): however many callers and processes ask for a stale token at once, the
 * provider sees one refresh request and every caller gets the same new token. Two broker
 * instances share one Redis, as two processes behind a load balancer would.
 */
describe('refresh stampede across two broker instances', () => {
  const env = (fakeUrl: string) => ({ PROVIDER_TIMEOUT: '2', ...providerEnv('bonjoro', fakeUrl) });
  const t = useBrokerOnRedis(
    env,
    { tokenDelayMs: 300, rotateRefreshTokens: true },
    { second: env, jobber: false },
  );
  let brokers: TestBroker[];
  beforeAll(() => {
    brokers = [t.broker, t.second];
  });

  async function importStale(id: string): Promise<string> {
    const refresh = `stampede-refresh-${id}`;
    t.fake.liveRefreshTokens.add(refresh);
    const put = await brokers[0]!.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: `stale-access-${id}`, refresh_token: refresh, expires_in: 100 },
    });
    expect(put.status).toBe(201);
    return refresh;
  }

  function callers(id: string, count: number) {
    return Promise.all(
      Array.from({ length: count }, (_, i) =>
        brokers[i % brokers.length]!.api(`/internal/connections/bonjoro/${id}/token`),
      ),
    );
  }

  it('sends one refresh request for 300 concurrent callers over two instances, and gives them all the same new token', async () => {
    const refresh = await importStale('hot');
    const before = t.fake.refreshRequests.length;

    const answers = await callers('hot', 300);

    const statuses = new Map<number, number>();
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    expect(Object.fromEntries(statuses)).toEqual({ 200: 300 });
    expect(t.fake.refreshRequests.length).toBe(before + 1);
    expect(t.fake.refreshRequests[before]!.params.refresh_token).toBe(refresh);
    const issued = t.fake.issued[t.fake.issued.length - 1]!;
    expect(new Set(answers.map((a) => a.body.access_token))).toEqual(new Set([issued.access_token]));
    // The rotated refresh token was stored: the next refresh presents it, and works.
    const next = await brokers[1]!.api('/internal/connections/bonjoro/hot/token?force_refresh=true');
    expect(next.status).toBe(200);
    expect(t.fake.refreshRequests[t.fake.refreshRequests.length - 1]!.params.refresh_token).toBe(
      issued.refresh_token,
    );
    // No lock is left behind.
    expect(await t.client.exists('ob:{bonjoro:hot}:lock')).toBe(0);
  });

  it('refreshes once per connection when two stale connections are hit at the same time', async () => {
    await importStale('twin-a');
    await importStale('twin-b');
    const before = t.fake.refreshRequests.length;
    const [a, b] = await Promise.all([callers('twin-a', 60), callers('twin-b', 60)]);
    expect(a.every((r) => r.status === 200) && b.every((r) => r.status === 200)).toBe(true);
    expect(new Set(a.map((r) => r.body.access_token)).size).toBe(1);
    expect(new Set(b.map((r) => r.body.access_token)).size).toBe(1);
    expect(a[0]!.body.access_token).not.toBe(b[0]!.body.access_token);
    expect(t.fake.refreshRequests.length).toBe(before + 2);
  });

  it('sends one refresh request when the provider refuses the refresh token, and answers every caller 409', async () => {
    const put = await brokers[1]!.api('/internal/connections/bonjoro/refused', {
      method: 'PUT',
      body: { access_token: 'stale-refused', refresh_token: 'revoked-at-provider', expires_in: 100 },
    });
    expect(put.status).toBe(201);
    const before = t.fake.tokenRequests.length;
    const answers = await callers('refused', 200);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([409]));
    expect(new Set(answers.map((a) => a.body.code))).toEqual(new Set(['reauthorization_required']));
    expect(t.fake.tokenRequests.length).toBe(before + 1);
    const meta = await brokers[0]!.api('/internal/connections/bonjoro/refused');
    expect(meta.body).toMatchObject({ status: 'reauthorization_required', refresh_failures: 1 });
  });

  it('waits out a lock left by a dead process, then refreshes once', async () => {
    t.fake.options.tokenDelayMs = 0;
    try {
      const refresh = await importStale('orphaned');
      const lockKey = 'ob:{bonjoro:orphaned}:lock';
      // The holder "died" mid-refresh: its lock stays until its PX runs out.
      const lockedAt = Date.now();
      expect(await t.client.set(lockKey, 'owner-of-a-dead-process', 'PX', 1500, 'NX')).toBe('OK');
      const before = t.fake.refreshRequests.length;

      const pending = callers('orphaned', 40);
      // While the dead holder's lock lives, nobody refreshes.
      await new Promise((r) => setTimeout(r, 300));
      expect(await t.client.get(lockKey)).toBe('owner-of-a-dead-process');
      expect(t.fake.refreshRequests.length).toBe(before);

      const answers = await pending;
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      expect(t.fake.refreshRequests.length).toBe(before + 1);
      const request = t.fake.refreshRequests[before]!;
      expect(request.params.refresh_token).toBe(refresh);
      expect(request.at).toBeGreaterThanOrEqual(lockedAt + 1400);
      const issued = t.fake.issued[t.fake.issued.length - 1]!;
      expect(new Set(answers.map((a) => a.body.access_token))).toEqual(new Set([issued.access_token]));
    } finally {
      t.fake.options.tokenDelayMs = 300;
    }
  });

  it('wakes the callers waiting on another holder by the message its release publishes', async () => {
    t.fake.options.tokenDelayMs = 0;
    const listener = t.redis.client();
    try {
      const refresh = await importStale('woken');
      const lockKey = 'ob:{bonjoro:woken}:lock';
      const channel = `${lockKey}:released`;
      const messages: string[] = [];
      listener.on('message', (from: string) => messages.push(from));
      await listener.subscribe(channel);
      const subscribers = async () => {
        const [, count] = (await t.client.pubsub('NUMSUB', channel)) as [string, number];
        return count;
      };
      // Another process holds the lock, mid-refresh.
      expect(await t.client.set(lockKey, 'holder-elsewhere', 'PX', 20_000, 'NX')).toBe('OK');
      const before = t.fake.refreshRequests.length;

      const pending = callers('woken', 20);
      // Each broker process waits on the lock's channel (one subscription each), beside ours.
      for (let i = 0; i < 100 && (await subscribers()) < 3; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await subscribers()).toBe(3);
      expect(t.fake.refreshRequests.length).toBe(before);

      // The holder lets go without a refresh (as a re-seal would): its release says so on the channel.
      expect(
        await new RefreshLock(t.client, new RedisKeys('ob:')).release('bonjoro', 'woken', 'holder-elsewhere'),
      ).toBe(true);
      const answers = await pending;
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      expect(t.fake.refreshRequests.length).toBe(before + 1);
      expect(t.fake.refreshRequests[before]!.params.refresh_token).toBe(refresh);
      const issued = t.fake.issued[t.fake.issued.length - 1]!;
      expect(new Set(answers.map((a) => a.body.access_token))).toEqual(new Set([issued.access_token]));
      // Ours, then the broker's that refreshed; the waiters are gone from the channel.
      expect(messages).toEqual([channel, channel]);
      expect(await subscribers()).toBe(1);
      expect(await t.client.exists(lockKey)).toBe(0);
    } finally {
      listener.disconnect();
      t.fake.options.tokenDelayMs = 300;
    }
  });
});
