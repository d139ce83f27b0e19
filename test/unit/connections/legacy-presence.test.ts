import { LegacyPresence } from '../../../src/connections/legacy-presence';
import { RedisClient } from '../../../src/connections/redis-client';

/** A Redis whose EXISTS answers as told, counting the checks. */
function fakeRedis(exists: { count: number }) {
  const calls: string[] = [];
  const redis = {
    exists: async (key: string) => {
      calls.push(key);
      return exists.count;
    },
  } as unknown as RedisClient;
  return { redis, calls };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('LegacyPresence', () => {
  it('says the old set may hold entries until a check finds it gone, and checks in the background', async () => {
    const state = { count: 1 };
    const { redis, calls } = fakeRedis(state);
    const presence = new LegacyPresence(redis, () => 'ob:connections');
    expect(presence.mayHoldEntries(0)).toBe(true);
    await settle();
    expect(calls).toEqual(['ob:connections']);
    // Present: still true; not checked again before the finding is stale.
    expect(presence.mayHoldEntries(1_000)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('skips the clean-up once the set is gone, and notices it back when a later check finds it', async () => {
    const state = { count: 0 };
    const { redis, calls } = fakeRedis(state);
    const presence = new LegacyPresence(redis, () => 'ob:schedule');
    expect(presence.mayHoldEntries()).toBe(true); // nothing known yet
    await settle();
    expect(presence.mayHoldEntries()).toBe(false);
    // A process of the earlier version writes the set again (a rolling deploy).
    state.count = 1;
    expect(presence.mayHoldEntries(Date.now() + 60_000)).toBe(false); // stale: re-checked beside
    await settle();
    expect(calls).toHaveLength(2);
    expect(presence.mayHoldEntries()).toBe(true);
  });
});
