import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY, providerEnv } from '../helpers/broker-harness';
import { FakeUpstream } from '../helpers/fake-upstream';
import { keyActor, writeServiceKeysFile } from '../helpers/service-keys';
import { until } from '../helpers/until';

const NOTES = 'notes-proxy-key-0123456789abcdef0123456789';
const BILLING = 'billing-token-key-0123456789abcdef01234567';

/**
 * The proxy behind the internal API's gate (docs/least-privilege.md, docs/proxy.md): a service key
 * proxies only where its grant holds `proxy`, a refusal tells nothing of what lies beyond the
 * grant, and every proxied request is on the audit log before anything goes upstream.
 */
describe('proxy with service keys and the audit log', () => {
  let upstream: FakeUpstream;
  beforeAll(async () => {
    upstream = await FakeUpstream.start();
  });
  afterAll(async () => {
    await upstream.close();
  });

  const t = useBrokerOnRedis((fakeUrl) => ({
    ...providerEnv('bexio', fakeUrl),
    JOBBER_API_BASE_URL: upstream.url,
    BEXIO_API_BASE_URL: upstream.url,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    SERVICE_KEYS_FILE: writeServiceKeysFile([
      { name: 'notes', keys: [NOTES], providers: ['jobber'], actions: ['proxy'] },
      { name: 'billing', keys: [BILLING], providers: ['jobber'], actions: ['token'] },
    ]),
  }));
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  /** The audit entries of one connection and action, newest first, read through the API. */
  async function entries(connectionId: string, action: string) {
    const res = await t.broker.api(`/internal/audit?connection_id=${connectionId}&action=${action}`);
    expect(res.status).toBe(200);
    return res.body.entries as Array<Record<string, unknown>>;
  }

  beforeAll(async () => {
    for (const [provider, id] of [
      ['jobber', 'p1'],
      ['bexio', 'b1'],
    ] as const) {
      const res = await t.broker.api(`/internal/connections/${provider}/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${provider}-${id}`, expires_in: 3600 },
      });
      expect(res.status).toBe(201);
    }
  });

  it('lets a service key proxy within its grant, the credential added upstream and the hand-out on record', async () => {
    const before = upstream.requests.length;
    const res = await t.broker.api('/internal/proxy/jobber/p1/notes?x=1', { headers: as(NOTES) });
    expect(res.status).toBe(200);
    expect(upstream.requests.length).toBe(before + 1);
    const reached = upstream.requests[upstream.requests.length - 1]!;
    expect(reached.headers.authorization).toBe('Bearer at-jobber-p1');
    const [entry] = await entries('p1', 'proxy');
    expect(entry).toMatchObject({ actor: 'notes', action: 'proxy', provider: 'jobber', status: 200 });
  });

  it('records a proxied request of an INTERNAL_API_KEYS key (the fast path) under its key actor', async () => {
    const res = await t.broker.api('/internal/proxy/bexio/b1/notes');
    expect(res.status).toBe(200);
    const [entry] = await entries('b1', 'proxy');
    expect(entry).toMatchObject({ actor: keyActor(TEST_INTERNAL_KEY), provider: 'bexio' });
  });

  it('refuses a provider outside the grant the same whether it, or the connection, exists; nothing goes upstream', async () => {
    const before = upstream.requests.length;
    const strip = (body: Record<string, unknown>) => ({ ...body, request_id: undefined });
    const existing = await t.broker.api('/internal/proxy/bexio/b1/notes', { headers: as(NOTES) });
    const missing = await t.broker.api('/internal/proxy/bexio/nope/notes', { headers: as(NOTES) });
    const unknown = await t.broker.api('/internal/proxy/not-a-provider/x/notes', { headers: as(NOTES) });
    for (const res of [existing, missing, unknown]) {
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect(res.headers.get('broker-error')).toBe('forbidden');
    }
    expect(existing.body.refused).toEqual({ provider: 'bexio' });
    expect(strip(missing.body)).toEqual(strip(existing.body));
    expect(upstream.requests.length).toBe(before);
    const refused = await until(async () => {
      const found = await entries('b1', 'forbidden');
      return found.length > 0 ? found : undefined;
    });
    expect(refused[0]).toMatchObject({ actor: 'notes', provider: 'bexio', status: 403 });
  });

  it('refuses a key without the proxy action, naming the action', async () => {
    const res = await t.broker.api('/internal/proxy/jobber/p1/notes', { headers: as(BILLING) });
    expect(res.status).toBe(403);
    expect(res.body.refused).toEqual({ action: 'proxy' });
  });

  it('sends nothing upstream when the hand-out cannot be put on record (fail closed)', async () => {
    // Every audit shard a key of the wrong type: Redis refuses each XADD (WRONGTYPE).
    const shards = Array.from({ length: 16 }, (_, i) => `ob:{audit:${i}}`);
    const saved = new Map<string, Array<[string, string[]]>>();
    for (const key of shards) {
      saved.set(key, (await t.client.xrange(key, '-', '+')) as Array<[string, string[]]>);
      await t.client.del(key);
      await t.client.set(key, 'not a stream');
    }
    const before = upstream.requests.length;
    try {
      for (const key of [NOTES, TEST_INTERNAL_KEY]) {
        const res = await t.broker.api('/internal/proxy/jobber/p1/notes', { headers: as(key) });
        expect({ status: res.status, code: res.body.code }).toEqual({
          status: 503,
          code: 'store_unavailable',
        });
        expect(JSON.stringify(res.body)).not.toContain('at-jobber-p1');
      }
      expect(upstream.requests.length).toBe(before);
    } finally {
      for (const key of shards) {
        await t.client.del(key);
        for (const [, fields] of saved.get(key) ?? []) await t.client.xadd(key, '*', ...fields);
      }
    }
    const again = await t.broker.api('/internal/proxy/jobber/p1/notes', { headers: as(NOTES) });
    expect(again.status).toBe(200);
  });
});
