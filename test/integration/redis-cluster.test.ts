import { Cluster } from 'ioredis';
import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnCluster } from '../helpers/broker-fixture';

/** Every key on every master of the cluster (SCAN per node: a cluster has no global keyspace). */
async function allKeys(client: Cluster): Promise<string[]> {
  const keys: string[] = [];
  for (const node of client.nodes('master')) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'COUNT', 500);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

describe('Redis Cluster (three masters)', () => {
  const t = useBrokerOnCluster(
    (fakeUrl) => ({ ...providerEnv('bexio', fakeUrl), ...providerEnv('jobber', fakeUrl) }),
    { rotateRefreshTokens: true },
    { second: true },
  );

  it('runs the whole connect flow: session on the cluster, code exchange, 303 to return_to, token served', async () => {
    const result = await t.broker.connect('bexio', 'acct-1', {
      returnTo: `${TEST_RETURN_ORIGIN}/integrations`,
    });
    expect(result.callback.status).toBe(303);
    const back = new URL(result.callback.location!);
    expect(back.searchParams.get('connected')).toBe('bexio');
    expect(back.searchParams.get('connection_id')).toBe('acct-1');

    const token = await t.second.api('/internal/connections/bexio/acct-1/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(t.fake.issued[t.fake.issued.length - 1]!.access_token);

    // The browser session lives on the cluster too: a replayed callback finds its flow used up.
    const replay = await result.browser.get(
      `${t.broker.publicUrl}/callback/bexio?code=again&state=${result.authorizeUrl.searchParams.get('state')}`,
    );
    expect(replay.status).toBe(400);
  });

  it('finishes a flow on the other broker than the one that started it', async () => {
    const link = new URL(await t.broker.connectLink('jobber', 'acct-cross'));
    const { TestBrowser } = await import('../helpers/browser');
    const browser = new TestBrowser();
    const auth = await browser.get(`${t.second.publicUrl}${link.pathname}${link.search}`);
    expect(auth.status).toBe(302);
    const state = new URL(auth.location!).searchParams.get('state')!;
    const callback = await browser.get(`${t.broker.publicUrl}/callback/jobber?code=c1&state=${state}`);
    expect(callback.status).toBe(200);
    expect((await t.second.api('/internal/connections/jobber/acct-cross')).body.status).toBe('active');
  });

  it('keeps every key of one connection in one slot, under the prefix and the {provider:connection_id} tag', async () => {
    await t.broker.connect('bexio', 'acct-slot');
    const tag = '{bexio:acct-slot}';
    const keys = (await allKeys(t.inspect)).filter((k) => k.includes(tag));
    expect(keys).toContain(`ob:${tag}:conn`);
    const node = t.cluster.node();
    try {
      const lockSlot = await node.cluster('KEYSLOT', `ob:${tag}:lock`);
      const slots = await Promise.all(keys.map((k) => node.cluster('KEYSLOT', k)));
      expect(new Set([...slots, lockSlot]).size).toBe(1);
    } finally {
      node.disconnect();
    }
    // Nothing of the broker's lives outside its prefix.
    expect((await allKeys(t.inspect)).filter((k) => !k.startsWith('ob:'))).toEqual([]);
  });

  it('imports, reads, lists with paging and deletes connections spread over the three masters', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `list-${String(i).padStart(2, '0')}`);
    for (const id of ids) {
      const put = await t.broker.api(`/internal/connections/jobber/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600 },
      });
      expect(put.status).toBe(201);
    }
    // The connections really are spread: more than one master holds some of them.
    const holders = new Set<string>();
    for (const node of t.inspect.nodes('master')) {
      const [, batch] = await node.scan('0', 'MATCH', 'ob:{jobber:list-*}:conn', 'COUNT', 1000);
      if (batch.length > 0) holders.add(`${node.options.port}`);
    }
    expect(holders.size).toBeGreaterThan(1);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `provider=jobber&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await t.second.api(`/internal/connections?${query}`);
      expect(page.status).toBe(200);
      expect(page.body.connections.length).toBeLessThanOrEqual(5);
      seen.push(...page.body.connections.map((c: { connection_id: string }) => c.connection_id));
      cursor = page.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(seen.filter((id) => id.startsWith('list-'))).toEqual(ids);
    expect(pages).toBeGreaterThanOrEqual(3);

    const token = await t.broker.api('/internal/connections/jobber/list-03/token');
    expect(token.body.access_token).toBe('at-list-03');
    expect((await t.broker.api('/internal/connections/jobber/list-03', { method: 'DELETE' })).status).toBe(
      204,
    );
    expect((await t.second.api('/internal/connections/jobber/list-03')).status).toBe(404);
  });

  it('sends one refresh to the provider for a stampede over two brokers, and every caller gets the new token', async () => {
    await t.broker.connect('bexio', 'acct-stampede');
    // Make the token stale: an import with a short life and a refresh token the fake knows.
    const live = t.fake.issued[t.fake.issued.length - 1]!;
    await t.broker.api('/internal/connections/bexio/acct-stampede', {
      method: 'PUT',
      body: { access_token: live.access_token, refresh_token: live.refresh_token, expires_in: 5 },
    });
    const before = t.fake.refreshRequests.length;
    t.fake.options.tokenDelayMs = 300;
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? t.broker : t.second).api('/internal/connections/bexio/acct-stampede/token'),
        ),
      );
      expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(t.fake.refreshRequests.length - before).toBe(1);
      const fresh = t.fake.issued[t.fake.issued.length - 1]!.access_token;
      expect(new Set(answers.map((r) => r.body.access_token))).toEqual(new Set([fresh]));
    } finally {
      t.fake.options.tokenDelayMs = 0;
    }
    // The rotated refresh token was stored: the next forced refresh presents it.
    const forced = await t.second.api('/internal/connections/bexio/acct-stampede/token?force_refresh=true');
    expect(forced.status).toBe(200);
    expect(t.fake.refreshRequests[t.fake.refreshRequests.length - 1]!.params.refresh_token).toBe(
      t.fake.issued[t.fake.issued.length - 2]!.refresh_token,
    );
  });

  it('answers /readyz 200 on the cluster', async () => {
    const res = await fetch(`${t.broker.internalUrl}/readyz`);
    expect(res.status).toBe(200);
  });
});
