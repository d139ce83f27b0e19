import { ListingIndex } from '../../src/connections/listing-index';
import { RedisKeys } from '../../src/connections/redis-keys';
import { useRedis } from '../helpers/redis-fixture';

/**
 * The listing index as chunks of at most 120 members, each a compact listpack sorted set, under a
 * directory of their lower bounds (src/connections/listing-index.ts); and the single sorted set
 * older versions kept, read until it is moved over.
 */
describe('ListingIndex: a directory of small sorted sets, read in byte order', () => {
  const t = useRedis();

  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

  async function pageAll(index: ListingIndex, limit: number, min = '-', max = '+'): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const page = await index.range(out.length ? `(${out[out.length - 1]}` : min, max, limit);
      out.push(...page);
      if (page.length < limit) return out;
    }
  }

  it('keeps every chunk a listpack of at most 120, and pages through all members in byte order', async () => {
    const keys = new RedisKeys('chunks:');
    const index = new ListingIndex(t.client, keys);
    // Random order, several providers, non-ASCII ids (byte order, not the locale's).
    const members = Array.from(
      { length: 1500 },
      (_, i) => `${['bonjoro', 'alpha', 'zeta'][i % 3]}:c-${(i * 7919) % 10007}${i % 11 === 0 ? 'é' : ''}`,
    );
    for (let i = 0; i < members.length; i += 50) await index.add(...members.slice(i, i + 50));
    const sorted = [...new Set(members)].sort(byteOrder);

    const bounds = await t.client.zrange(keys.indexDirectory(), 0, -1);
    expect(bounds.length).toBeGreaterThan(10);
    for (const b of bounds) {
      const chunk = `${keys.indexChunkPrefix()}${b}`;
      expect(await t.client.zcard(chunk)).toBeLessThanOrEqual(120);
      expect(await t.client.object('ENCODING', chunk)).toBe('listpack');
    }
    for (const limit of [1, 7, 120, 1000]) expect(await pageAll(index, limit)).toEqual(sorted);
    // One provider's members, by the listing's own bounds.
    expect(await pageAll(index, 33, '[bonjoro:', '[bonjoro;')).toEqual(
      sorted.filter((m) => m.startsWith('bonjoro:')),
    );
    expect(await index.range('(zeta:~', '[bonjoro;', 10)).toEqual([]);

    const probe = [sorted[0]!, sorted[700]!, 'bonjoro:absent', sorted[sorted.length - 1]!];
    expect(await index.contains(probe)).toEqual([true, true, false, true]);
  });

  it('removes members, and drops emptied chunks from the directory', async () => {
    const keys = new RedisKeys('remove:');
    const index = new ListingIndex(t.client, keys);
    const members = Array.from({ length: 600 }, (_, i) => `p:${String(i).padStart(4, '0')}`);
    await index.add(...members);
    const chunksBefore = await t.client.zcard(keys.indexDirectory());
    await index.remove(...members.slice(100, 500));
    expect(await pageAll(index, 50)).toEqual([...members.slice(0, 100), ...members.slice(500)]);
    expect(await t.client.zcard(keys.indexDirectory())).toBeLessThan(chunksBefore);
    expect(await index.contains(['p:0200', 'p:0050'])).toEqual([false, true]);
    await index.remove(...members);
    expect(await pageAll(index, 50)).toEqual([]);
    // Only the first chunk's bound ('') stays; no chunk key is left.
    expect(await t.client.zrange(keys.indexDirectory(), 0, -1)).toEqual(['']);
    expect(await t.client.keys('remove:{connections}:c:*')).toEqual([]);
  });

  it('fills chunks when ids only grow (appends split at the end, not in halves)', async () => {
    const keys = new RedisKeys('append:');
    const index = new ListingIndex(t.client, keys);
    for (let i = 0; i < 1200; i++) await index.add(`p:${String(i).padStart(5, '0')}`);
    expect(await t.client.zcard(keys.indexDirectory())).toBeLessThanOrEqual(11);
  });

  it('reads, and moves over, the single index set an older version wrote', async () => {
    const keys = new RedisKeys('legacy:');
    const index = new ListingIndex(t.client, keys);
    const old = Array.from({ length: 700 }, (_, i) => `p:old-${String(i).padStart(4, '0')}`);
    await t.client.zadd(keys.legacyIndex(), ...old.flatMap((m) => [0, m]));
    await index.add('p:new-1', 'p:old-0001');
    expect(await pageAll(index, 100)).toEqual([...old, 'p:new-1'].sort(byteOrder));
    expect(await index.contains(['p:old-0500', 'p:old-0001', 'p:none'])).toEqual([true, true, false]);
    await index.remove('p:old-0500');
    expect(await index.contains(['p:old-0500'])).toEqual([false]);

    let moved = 0;
    for (let n = await index.migrateLegacy(); n > 0; n = await index.migrateLegacy()) moved += n;
    expect(moved).toBe(698);
    expect(await t.client.exists(keys.legacyIndex())).toBe(0);
    expect(await pageAll(index, 100)).toEqual(
      [...old.filter((m) => m !== 'p:old-0500'), 'p:new-1'].sort(byteOrder),
    );
  });
});
