import { AUDIT_SHARDS } from '../../src/audit/audit-log';
import { providerEnv } from '../helpers/broker-harness';
import { useBrokerOnCluster } from '../helpers/broker-fixture';
import { writeServiceKeysFile } from '../helpers/service-keys';

const BILLING = 'billing-key-0123456789abcdef0123456789abcd';

/**
 * The audit log on a three-master Redis Cluster: its shards are spread over several masters (no
 * one slot takes every entry), hand-outs are recorded before the token leaves, and the listing
 * merges the shards of every node into one newest-first log.
 */
describe('the audit log and service keys on Redis Cluster', () => {
  const t = useBrokerOnCluster((fakeUrl) => ({
    SERVICE_KEYS_FILE: writeServiceKeysFile([
      { name: 'billing', keys: [BILLING], providers: ['jobber'], actions: ['token', 'read'] },
    ]),
    ...providerEnv('jobber', fakeUrl),
    ...providerEnv('bexio', fakeUrl),
  }));

  it('spreads the shards over the masters, records every hand-out, and pages them merged', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `cl-${i}`);
    for (const id of ids)
      expect(
        (
          await t.broker.api(`/internal/connections/jobber/${id}`, {
            method: 'PUT',
            body: { access_token: `at-${id}` },
          })
        ).status,
      ).toBe(201);
    for (const id of ids) {
      const res = await t.broker.api(`/internal/connections/jobber/${id}/token`, {
        headers: { authorization: `Bearer ${BILLING}` },
      });
      expect(res.status).toBe(200);
    }
    expect(
      (
        await t.broker.api('/internal/connections/bexio/x/token', {
          headers: { authorization: `Bearer ${BILLING}` },
        })
      ).status,
    ).toBe(403);

    // Which master holds each non-empty shard: more than one.
    const node = t.cluster.node(0);
    const owners = new Set<string>();
    let total = 0;
    try {
      const slots = (await node.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      for (let shard = 0; shard < AUDIT_SHARDS; shard++) {
        const key = `ob:{audit:${shard}}`;
        const length = await t.inspect.xlen(key);
        total += length;
        if (length === 0) continue;
        const slot = Number(await node.call('CLUSTER', 'KEYSLOT', key));
        const owner = slots.find(([from, to]) => slot >= from && slot <= to)!;
        owners.add(String(owner[2][1]));
      }
    } finally {
      node.disconnect();
    }
    expect(owners.size).toBeGreaterThan(1);
    expect(total).toBe(ids.length * 2 + 1);

    const seen: Array<{ id: string; at: string; actor: string; action: string }> = [];
    let cursor: string | null = null;
    do {
      const res = await t.broker.api(`/internal/audit?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.entries);
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(total);
    expect(new Set(seen.map((e) => e.id)).size).toBe(total);
    const times = seen.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(seen[0]).toMatchObject({ actor: 'billing', action: 'forbidden' });
    expect(seen.filter((e) => e.actor === 'billing' && e.action === 'token')).toHaveLength(ids.length);

    const one = await t.broker.api('/internal/audit?provider=jobber&connection_id=cl-3');
    expect(one.body.entries.map((e: { action: string }) => e.action)).toEqual(['token', 'import']);
  });
});
