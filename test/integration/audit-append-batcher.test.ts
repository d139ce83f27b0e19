import { AppendBatcher } from '../../src/audit/append-batcher';
import { useRedis } from '../helpers/redis-fixture';

/** The audit log's batched append on a real Redis: entries of one turn go out together, each with its own outcome. */
describe('AppendBatcher (the audit log writes one turn of entries in one call)', () => {
  const t = useRedis();

  it('writes the entries of one turn in one script call; a shard Redis refuses fails only its own entries', async () => {
    await t.client.set('t:{audit:2}', 'not a stream');
    const batcher = new AppendBatcher(t.client, ['=', '100']);
    const commands: string[] = [];
    const watching = await t.newClient().monitor();
    watching.on('monitor', (_time: string, args: string[]) => commands.push(String(args[0]).toLowerCase()));
    const outcomes = await Promise.allSettled([
      batcher.add('t:{audit:1}', '["a",1]'),
      batcher.add('t:{audit:2}', '["b",2]'),
      batcher.add('t:{audit:1}', '["c",3]'),
      batcher.add('t:{audit:3}', '["d",4]'),
    ]);
    watching.disconnect();
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const one = (await t.client.xrange('t:{audit:1}', '-', '+')) as Array<[string, string[]]>;
    expect(one.map(([, f]) => f)).toEqual([
      ['e', '["a",1]'],
      ['e', '["c",3]'],
    ]);
    expect(await t.client.xlen('t:{audit:3}')).toBe(1);
    expect(await t.client.type('t:{audit:2}')).toBe('string');
    // One call for the four (the script's XADDs show inside it), not one command each.
    expect(commands.filter((c) => c === 'evalsha' || c === 'eval')).toHaveLength(1);
  });

  it('sends a lone entry as a plain XADD, trimmed to the length given', async () => {
    const batcher = new AppendBatcher(t.client, ['=', '3']);
    for (let i = 0; i < 5; i++) await batcher.add('t:{audit:9}', `["x",${i}]`);
    const kept = (await t.client.xrange('t:{audit:9}', '-', '+')) as Array<[string, string[]]>;
    expect(kept.map(([, f]) => f[1])).toEqual(['["x",2]', '["x",3]', '["x",4]']);
    await expect(batcher.add('t:{audit:2}', '["y",1]')).rejects.toThrow();
  });
});
