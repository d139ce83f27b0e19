import { listGranted } from '../../../src/http/routes/list-granted';

/** The store's listing over a fixed index, as ConnectionStore.list pages it (lexicographic members). */
function fakeList(members: string[]) {
  const sorted = [...members].sort();
  const calls: string[] = [];
  const list = async (o: { provider?: string; cursor?: string; limit: number }) => {
    calls.push(o.provider ?? '*');
    const within = sorted.filter(
      (m) => (!o.provider || m.startsWith(`${o.provider}:`)) && (!o.cursor || m > o.cursor),
    );
    const page = within.slice(0, o.limit);
    const more = within.length > o.limit;
    return {
      connections: page.map((m) => {
        const [provider, connection_id] = [m.slice(0, m.indexOf(':')), m.slice(m.indexOf(':') + 1)];
        return { provider, connection_id } as never;
      }),
      nextCursor: more ? page[page.length - 1]! : null,
    };
  };
  return { list, calls };
}

describe('the listing of a scoped service (only its providers, same order and cursor)', () => {
  const index = ['a:1', 'a:2', 'b:1', 'b:2', 'b:3', 'c:1', 'd:1', 'd:2'];

  it.each([1, 2, 3, 10])('pages through exactly the granted providers, %i at a time', async (limit) => {
    const { list, calls } = fakeList(index);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await listGranted(list, ['d', 'b'], cursor, limit);
      expect(page.connections.length).toBeLessThanOrEqual(limit);
      seen.push(
        ...page.connections.map(
          (c: { provider: string; connection_id: string }) => `${c.provider}:${c.connection_id}`,
        ),
      );
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(['b:1', 'b:2', 'b:3', 'd:1', 'd:2']);
    expect(calls.every((p) => p === 'b' || p === 'd')).toBe(true);
  });
});
