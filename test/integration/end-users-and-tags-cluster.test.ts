import { providerEnv } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, startFlow } from '../helpers/flow-steps';
import { useBrokerOnCluster } from '../helpers/broker-fixture';

describe('end users and tags on Redis Cluster (three masters)', () => {
  const t = useBrokerOnCluster((fakeUrl) => ({
    ...providerEnv('jobber', fakeUrl),
    ...providerEnv('bonjoro', fakeUrl),
  }));

  const listIds = async (query: string, limit: number): Promise<string[]> => {
    const out: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.broker.api(
        `/internal/connections?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.status).toBe(200);
      out.push(...res.body.connections.map((c: any) => `${c.provider}:${c.connection_id}`));
      cursor = res.body.next_cursor;
    } while (cursor);
    return out;
  };

  it('stores the owner of a connect flow, imports and PATCHes, and lists by end user and tags across slots', async () => {
    const browser = new TestBrowser();
    const flow = await startFlow(t.broker, browser, 'jobber', 'cl-flow', {
      end_user: { id: 'u_a' },
      tags: { org: '1' },
    });
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'c', state: flow.state }))).status,
    ).toBe(200);
    for (let i = 0; i < 12; i++) {
      const res = await t.broker.api(`/internal/connections/${i % 2 ? 'bonjoro' : 'jobber'}/cl-${i}`, {
        method: 'PUT',
        body: {
          access_token: `a${i}`,
          end_user: { id: `u_${i % 3 ? 'a' : 'b'}` },
          tags: { org: String(i % 2) },
        },
      });
      expect(res.status).toBe(201);
    }
    const expectA = [
      'jobber:cl-flow',
      ...Array.from({ length: 12 }, (_, i) => i)
        .filter((i) => i % 3)
        .map((i) => `${i % 2 ? 'bonjoro' : 'jobber'}:cl-${i}`),
    ].sort();
    expect(await listIds('end_user_id=u_a', 2)).toEqual(expectA);
    expect(await listIds('end_user_id=u_a&tag=org:1&provider=bonjoro', 1)).toEqual(
      expectA.filter((m) => m.startsWith('bonjoro:')),
    );

    // The index keys really sit in different slots (no cross-slot command could serve them).
    const slots = await Promise.all(
      ['ob:eu:u_a', 'ob:eu:u_b', 'ob:tag:org:0', 'ob:tag:org:1', 'ob:{jobber:cl-flow}:conn'].map((k) =>
        t.inspect.cluster('KEYSLOT', k),
      ),
    );
    expect(new Set(slots).size).toBeGreaterThan(1);

    const patched = await t.broker.api('/internal/connections/jobber/cl-flow', {
      method: 'PATCH',
      body: { end_user: { id: 'u_b' } },
    });
    expect(patched.body.end_user).toEqual({ id: 'u_b' });
    expect(await listIds('end_user_id=u_a', 50)).not.toContain('jobber:cl-flow');
    expect(await listIds('end_user_id=u_b', 50)).toContain('jobber:cl-flow');
    expect(await t.inspect.zscore('ob:eu:u_a', 'jobber:cl-flow')).toBeNull();

    for (let i = 0; i < 12; i++)
      expect(
        (
          await t.broker.api(`/internal/connections/${i % 2 ? 'bonjoro' : 'jobber'}/cl-${i}`, {
            method: 'DELETE',
          })
        ).status,
      ).toBe(204);
    await t.broker.api('/internal/connections/jobber/cl-flow', { method: 'DELETE' });
    expect(await t.inspect.exists('ob:eu:u_a')).toBe(0);
    expect(await t.inspect.exists('ob:eu:u_b')).toBe(0);
    expect(await t.inspect.exists('ob:tag:org:0')).toBe(0);
    expect(await t.inspect.exists('ob:tag:org:1')).toBe(0);
    expect(await listIds('tag=org:1', 50)).toEqual([]);
  });
});
