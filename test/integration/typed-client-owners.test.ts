import { BrokerClient } from '@oauth-broker/client';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';

describe('typed client: end users, tags, PATCH and the filtered listing against a real broker', () => {
  const t = useBrokerOnRedis({}, { expiresIn: 3600 });
  const sent: string[] = [];

  function client(): BrokerClient {
    return new BrokerClient({
      baseUrl: t.broker.internalUrl,
      apiKey: TEST_INTERNAL_KEY,
      fetch: async (input, init) => {
        const url = new URL(String(input));
        sent.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search}`);
        return fetch(input, init);
      },
    });
  }

  it('a connect session names the owner, the journey stores it, and the listing finds it by end user and tags', async () => {
    const c = client();
    const session = await c.createConnectSession({
      provider: 'jobber',
      connection_id: 'cl-owner-1',
      end_user: { id: 'u_cl', email: 'cl@example.com' },
      tags: { org: '42', env: 'prod' },
    });
    const browser = new TestBrowser();
    const auth = await browser.get(session.url);
    const consent = await browser.get(auth.location!);
    expect((await browser.get(consent.location!)).status).toBe(200);

    const connection = await c.getConnection('jobber', 'cl-owner-1');
    expect(connection.end_user).toEqual({ id: 'u_cl', email: 'cl@example.com' });
    expect(connection.tags).toEqual({ env: 'prod', org: '42' });

    await c.importConnection('jobber', 'cl-owner-2', { access_token: 'a', tags: { org: '42' } });
    const byUser = await c.listConnections({ endUserId: 'u_cl' });
    expect(byUser.connections.map((x) => x.connection_id)).toEqual(['cl-owner-1']);
    const byTags = await c.listConnections({ tags: { org: '42', env: 'prod' }, provider: 'jobber' });
    expect(byTags.connections.map((x) => x.connection_id)).toEqual(['cl-owner-1']);
    expect(sent).toContain('GET /internal/connections?provider=jobber&tag=org%3A42&tag=env%3Aprod');
    const all: string[] = [];
    for await (const x of c.iterateConnections({ tags: { org: '42' }, limit: 1 })) all.push(x.connection_id);
    expect(all).toEqual(['cl-owner-1', 'cl-owner-2']);
  });

  it('updateConnection (PATCH) replaces what it names and answers the metadata', async () => {
    const c = client();
    const updated = await c.updateConnection('jobber', 'cl-owner-2', { end_user: { id: 'u_cl2' } });
    expect(updated).toMatchObject({
      connection_id: 'cl-owner-2',
      end_user: { id: 'u_cl2' },
      tags: { org: '42' },
    });
    expect((await c.listConnections({ endUserId: 'u_cl2' })).connections).toHaveLength(1);
    await expect(c.updateConnection('jobber', 'cl-none', { tags: {} })).rejects.toMatchObject({
      code: 'connection_not_found',
    });
  });
});
