import { providerEnv } from '../helpers/broker-harness';
import { useBrokerOnCluster } from '../helpers/broker-fixture';
import { scheduledAt, unindex, unschedule } from '../helpers/index-entries';

/**
 * On Cluster the index and the schedule live on other masters than a connection's record, so a
 * master's outage between the writes can leave a record outside both. The repair finds records by
 * SCAN on every master and puts their entries back; the listing then shows them all again.
 */
describe('index and schedule repair on Redis Cluster (three masters)', () => {
  const t = useBrokerOnCluster(
    (fakeUrl) => ({
      KEEPALIVE_AFTER: '3600',
      ...providerEnv('bexio', fakeUrl),
    }),
    { rotateRefreshTokens: true },
  );

  it('finds records on every master and puts back their index and schedule entries', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `spread-${i}`);
    for (const id of ids) {
      const minted = t.fake.mint();
      const res = await t.broker.api(`/internal/connections/bexio/${id}`, {
        method: 'PUT',
        body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
      });
      expect(res.status).toBe(201);
    }
    // Records on more than one master: the SCAN must visit them all.
    const masters = new Set<string>();
    for (const node of t.inspect.nodes('master')) {
      const [, keys] = await node.scan('0', 'MATCH', 'ob:{bexio:*}:conn', 'COUNT', 1000);
      if (keys.length > 0) masters.add(`${node.options.host}:${node.options.port}`);
    }
    expect(masters.size).toBeGreaterThan(1);
    const lost = ids.filter((_, i) => i % 3 === 0);
    for (const id of lost) {
      await unindex(t.inspect, 'ob:', `bexio:${id}`);
      await unschedule(t.inspect, 'ob:', `bexio:${id}`);
    }

    const repaired = await t.broker.broker.connections.repairIfDue(60_000);
    expect(repaired).toEqual({ records: 30, indexAdded: lost.length, scheduleAdded: lost.length });
    const listed = await t.broker.api('/internal/connections?provider=bexio&limit=100');
    expect(listed.body.connections).toHaveLength(30);
    for (const id of lost) expect(await scheduledAt(t.inspect, 'ob:', `bexio:${id}`)).not.toBeNull();
    // Another process finds the repair taken for the period.
    expect(await t.broker.broker.connections.repairIfDue(60_000)).toBeNull();
  }, 60_000);
});
