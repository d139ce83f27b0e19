import { OwnerIndex } from '../../src/connections/owner-index';
import { RedisKeys } from '../../src/connections/redis-keys';
import { RedisClient } from '../../src/connections/redis-client';
import { useRedis } from '../helpers/redis-fixture';

/**
 * The owner indexes' write order (docs/end-users-and-tags.md, crash safety) under the races it
 * exists for, made to happen at exactly the wrong moment: a client whose `zrem` first lets a
 * competing record write land.
 */
describe('owner indexes: removal races a record write', () => {
  const t = useRedis();
  const keys = new RedisKeys('race:');
  const record = keys.connection('jobber', 'c1');

  beforeEach(async () => {
    await t.client.flushall();
  });

  /** A client that runs `before()` once, just before the first ZREM reaches Redis. */
  function racing(before: () => Promise<unknown>): RedisClient {
    let fired = false;
    return new Proxy(t.client, {
      get(target, prop, receiver) {
        if (prop === 'zrem')
          return async (...args: [string, string]) => {
            if (!fired) {
              fired = true;
              await before();
            }
            return target.zrem(...args);
          };
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as RedisClient;
  }

  it('a heal that removes an entry while a write makes the record match it puts the entry back', async () => {
    // A writer added its entry (step 1) and is about to write the record; a listing heals first.
    await t.client.hset(record, 'version', '1');
    await t.client.zadd(keys.endUserIndex('u1'), 0, 'jobber:c1');
    const index = new OwnerIndex(
      racing(() => t.client.hset(record, 'version', '2', 'end_user', '{"id":"u1"}')),
      keys,
    );
    await index.reconcile('jobber', 'c1', [keys.endUserIndex('u1')]);
    expect(await t.client.zscore(keys.endUserIndex('u1'), 'jobber:c1')).toBe('0');
  });

  it('without the race, an entry whose record does not match is removed, and one of a deleted record too', async () => {
    await t.client.hset(record, 'version', '1', 'end_user', '{"id":"u2"}');
    await t.client.zadd(keys.endUserIndex('u1'), 0, 'jobber:c1');
    await t.client.zadd(keys.endUserIndex('u2'), 0, 'jobber:c1');
    const index = new OwnerIndex(t.client, keys);
    await index.reconcile('jobber', 'c1', [keys.endUserIndex('u1'), keys.endUserIndex('u2')]);
    expect(await t.client.exists(keys.endUserIndex('u1'))).toBe(0);
    expect(await t.client.zscore(keys.endUserIndex('u2'), 'jobber:c1')).toBe('0');
    await t.client.del(record);
    await index.reconcile('jobber', 'c1', [keys.endUserIndex('u2')]);
    expect(await t.client.exists(keys.endUserIndex('u2'))).toBe(0);
  });

  it('a delete whose cleanup races a re-creation with the same owner keeps the entry', async () => {
    await t.client.zadd(keys.tagIndex('org', '1'), 0, 'jobber:c1');
    // The record is gone (deleted); before the cleanup's ZREM lands, it is made again with org 1.
    const index = new OwnerIndex(
      racing(() => t.client.hset(record, 'version', '1', 'tags', '{"org":"1"}')),
      keys,
    );
    await index.reconcile('jobber', 'c1', [keys.tagIndex('org', '1')]);
    expect(await t.client.zscore(keys.tagIndex('org', '1'), 'jobber:c1')).toBe('0');
  });

  it('a listing never shows a candidate whose record does not match, whatever the index holds', async () => {
    await t.client.hset(record, 'version', '1', 'tags', '{"org":"2"}');
    await t.client.zadd(keys.tagIndex('org', '1'), 0, 'jobber:c1', 0, 'jobber:c0-gone');
    const index = new OwnerIndex(t.client, keys);
    const read = async (_p: string, c: string) =>
      c === 'c1'
        ? ({ provider: 'jobber', connection_id: 'c1', end_user: null, tags: { org: '2' } } as never)
        : null;
    const page = await index.list({ tags: [['org', '1']] }, undefined, 10, read);
    expect(page).toEqual({ connections: [], nextCursor: null });
  });
});
