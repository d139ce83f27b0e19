import { DueSchedule } from '../../src/connections/due-schedule';
import { RedisKeys } from '../../src/connections/redis-keys';
import { useRedis } from '../helpers/redis-fixture';

/**
 * The due-work schedule as chunks of at most 120 members (each a compact listpack sorted set) split
 * by member range, with a directory of each chunk's soonest entry (src/connections/due-schedule.ts);
 * and the single sorted set older versions kept, read until it is moved over.
 */
describe('DueSchedule: small sorted sets, and a directory of their soonest entries', () => {
  const t = useRedis();

  const member = (i: number) => `p:${(i * 7919) % 10007}`;

  it('answers the due entries soonest first, counts them, and keeps every chunk a listpack', async () => {
    const keys = new RedisKeys('due:');
    const schedule = new DueSchedule(t.client, keys);
    // 1,000 entries due at 1..1000 in a scattered member order.
    for (let i = 1; i <= 1000; i++) await schedule.set(member(i), i);
    for (const b of await t.client.zrange(keys.scheduleDirectory(), 0, -1)) {
      const chunk = `${keys.scheduleChunkPrefix()}${b}`;
      expect(await t.client.zcard(chunk)).toBeLessThanOrEqual(120);
      expect(await t.client.object('ENCODING', chunk)).toBe('listpack');
    }
    expect(await t.client.zcard(keys.scheduleDirectory())).toBeGreaterThan(8);

    const due = await schedule.due(250, 100);
    expect(due.map((d) => d.at)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(due.map((d) => d.member)).toEqual(Array.from({ length: 100 }, (_, i) => member(i + 1)));
    expect((await schedule.due(250, 1000)).length).toBe(250);
    expect(await schedule.countDue(250)).toBe(250);
    expect(await schedule.countDue(0)).toBe(0);
    expect(await schedule.due(0, 10)).toEqual([]);

    // Moved later, moved earlier, only-earlier refused, only-if-absent refused, removed.
    await schedule.set(member(1), 5000);
    await schedule.set(member(999), -1);
    await schedule.set(member(2), 9000, 'LT');
    await schedule.set(member(3), 9000, 'NX');
    await schedule.set(member(4), 1, 'LT');
    await schedule.remove(member(5));
    expect(
      await schedule.scores([member(1), member(999), member(2), member(3), member(4), member(5)]),
    ).toEqual([5000, -1, 2, 3, 1, null]);
    expect((await schedule.due(6, 10)).map((d) => d.member)).toEqual([
      member(999),
      member(4),
      member(2),
      member(3),
      member(6),
    ]);
    expect(await schedule.countDue(250)).toBe(249);
  });

  it('takes emptied chunks out of both directories', async () => {
    const keys = new RedisKeys('empty:');
    const schedule = new DueSchedule(t.client, keys);
    for (let i = 0; i < 500; i++) await schedule.set(member(i), 1000 + i);
    for (let i = 0; i < 500; i++) await schedule.remove(member(i));
    expect(await schedule.countDue(1e12)).toBe(0);
    expect(await t.client.zrange(keys.scheduleDirectory(), 0, -1)).toEqual(['']);
    expect(await t.client.zcard(keys.scheduleDue())).toBe(0);
    expect(await t.client.keys('empty:{schedule}:c:*')).toEqual([]);
  });

  it('fills chunks when ids only grow (appends split at the end, not in halves)', async () => {
    const keys = new RedisKeys('append:');
    const schedule = new DueSchedule(t.client, keys);
    for (let i = 0; i < 1200; i++) await schedule.set(`p:${String(i).padStart(5, '0')}`, 1200 - i);
    expect(await t.client.zcard(keys.scheduleDirectory())).toBeLessThanOrEqual(11);
    expect((await schedule.due(3, 10)).map((d) => d.member)).toEqual(['p:01199', 'p:01198', 'p:01197']);
  });

  it('reads, and moves over, the single schedule set an older version wrote', async () => {
    const keys = new RedisKeys('legacy:');
    const schedule = new DueSchedule(t.client, keys);
    await t.client.zadd(keys.legacySchedule(), 10, 'p:a', 20, 'p:b', 30, 'p:c', 40, 'p:d');
    await schedule.set('p:new', 15);
    expect(await schedule.due(100, 10)).toEqual([
      { member: 'p:a', at: 10 },
      { member: 'p:new', at: 15 },
      { member: 'p:b', at: 20 },
      { member: 'p:c', at: 30 },
      { member: 'p:d', at: 40 },
    ]);
    expect(await schedule.countDue(25)).toBe(3);
    // A write after the upgrade: the member leaves the old set. LT keeps the sooner of the two.
    await schedule.set('p:b', 50, 'LT');
    await schedule.set('p:c', 5, 'LT');
    await schedule.remove('p:d');
    expect(await schedule.scores(['p:a', 'p:b', 'p:c', 'p:d'])).toEqual([10, 20, 5, null]);
    expect(await t.client.zrange(keys.legacySchedule(), 0, -1)).toEqual(['p:a']);

    expect(await schedule.migrateLegacy()).toBe(1);
    expect(await schedule.migrateLegacy()).toBe(0);
    expect(await t.client.exists(keys.legacySchedule())).toBe(0);
    expect((await schedule.due(100, 10)).map((d) => [d.member, d.at])).toEqual([
      ['p:c', 5],
      ['p:a', 10],
      ['p:new', 15],
      ['p:b', 20],
    ]);
  });
});
