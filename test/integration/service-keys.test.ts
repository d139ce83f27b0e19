import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY, providerEnv } from '../helpers/broker-harness';
import { keyActor, writeServiceKeysFile } from '../helpers/service-keys';

const BILLING_OLD = 'billing-key-old-0123456789abcdef0123456789';
const BILLING_NEW = 'billing-key-new-0123456789abcdef0123456789';
const ONBOARDING = 'onboarding-key-0123456789abcdef0123456789';
const OPS = 'ops-key-0123456789abcdef0123456789abcdef';
const PROXY_ONLY = 'proxy-only-key-0123456789abcdef0123456789';
const AUDITOR = 'auditor-key-0123456789abcdef0123456789abcd';

const SERVICES = [
  { name: 'billing', keys: [BILLING_OLD, BILLING_NEW], providers: ['jobber'], actions: ['token', 'read'] },
  { name: 'onboarding', keys: [ONBOARDING], providers: ['jobber'], actions: ['connect', 'write', 'delete'] },
  { name: 'ops', keys: [OPS], providers: ['*'], actions: ['admin'] },
  { name: 'proxy-only', keys: [PROXY_ONLY], providers: ['bexio'], actions: ['proxy'] },
  { name: 'auditor', keys: [AUDITOR], providers: ['jobber'], actions: ['admin'] },
];

/** Every caller of the table: the keys, what each may do, on which providers. */
const CALLERS: Array<{ name: string; key: string; actions: string[]; providers: string[] | '*' }> = [
  {
    name: 'INTERNAL_API_KEYS',
    key: TEST_INTERNAL_KEY,
    actions: ['token', 'read', 'connect', 'write', 'delete', 'admin', 'proxy'],
    providers: '*',
  },
  { name: 'billing (old key)', key: BILLING_OLD, actions: SERVICES[0]!.actions, providers: ['jobber'] },
  { name: 'billing (new key)', key: BILLING_NEW, actions: SERVICES[0]!.actions, providers: ['jobber'] },
  { name: 'onboarding', key: ONBOARDING, actions: SERVICES[1]!.actions, providers: ['jobber'] },
  { name: 'ops', key: OPS, actions: SERVICES[2]!.actions, providers: '*' },
  { name: 'proxy-only', key: PROXY_ONLY, actions: SERVICES[3]!.actions, providers: ['bexio'] },
];

/** Every internal route, the action it takes and the provider it names. */
const ROUTES: Array<{
  name: string;
  method: string;
  path: string;
  body?: unknown;
  action: string;
  provider?: string;
}> = [
  {
    name: 'token (fast path)',
    method: 'GET',
    path: '/internal/connections/jobber/c1/token',
    action: 'token',
    provider: 'jobber',
  },
  {
    name: 'token (router spelling)',
    method: 'GET',
    path: '/internal/connections/jobber/c1/token/',
    action: 'token',
    provider: 'jobber',
  },
  {
    name: 'metadata',
    method: 'GET',
    path: '/internal/connections/jobber/c1',
    action: 'read',
    provider: 'jobber',
  },
  { name: 'listing', method: 'GET', path: '/internal/connections', action: 'read' },
  {
    name: 'listing of a provider',
    method: 'GET',
    path: '/internal/connections?provider=jobber',
    action: 'read',
    provider: 'jobber',
  },
  {
    name: 'connect session',
    method: 'POST',
    path: '/internal/connect-sessions',
    body: { provider: 'jobber', connection_id: 'c-new' },
    action: 'connect',
    provider: 'jobber',
  },
  {
    name: 'import',
    method: 'PUT',
    path: '/internal/connections/jobber/c-import',
    body: { access_token: 'at-table-import', expires_in: 3600 },
    action: 'write',
    provider: 'jobber',
  },
  {
    name: 'delete (of a missing connection)',
    method: 'DELETE',
    path: '/internal/connections/jobber/c-missing',
    action: 'delete',
    provider: 'jobber',
  },
  { name: 'providers', method: 'GET', path: '/internal/providers', action: 'admin' },
  { name: 'audit', method: 'GET', path: '/internal/audit', action: 'admin' },
  { name: 'openapi', method: 'GET', path: '/internal/openapi.json', action: 'admin' },
];

describe('service keys (SERVICE_KEYS_FILE): each key does what its grant allows, on every route', () => {
  const serviceKeysFile = writeServiceKeysFile(SERVICES);
  const t = useBrokerOnRedis((fakeUrl) => ({
    ...providerEnv('bexio', fakeUrl),
    SERVICE_KEYS_FILE: serviceKeysFile,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
  }));
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    for (const [provider, id] of [
      ['jobber', 'c1'],
      ['jobber', 'c2'],
      ['jobber', 'c3'],
      ['bexio', 'b1'],
      ['bexio', 'b2'],
    ] as const) {
      const res = await t.broker.api(`/internal/connections/${provider}/${id}`, {
        method: 'PUT',
        body: {
          access_token: `at-${provider}-${id}`,
          refresh_token: `rt-${provider}-${id}`,
          expires_in: 3600,
        },
      });
      expect(res.status).toBe(201);
    }
  });

  for (const caller of CALLERS) {
    for (const route of ROUTES) {
      const allowed =
        caller.actions.includes(route.action) &&
        (route.provider === undefined ||
          caller.providers === '*' ||
          caller.providers.includes(route.provider));
      it(`${caller.name}: ${route.name} is ${allowed ? 'allowed' : 'refused with 403'}`, async () => {
        const res = await t.broker.api(route.path, {
          method: route.method,
          body: route.body,
          headers: as(caller.key),
        });
        if (allowed) {
          expect([401, 403]).not.toContain(res.status);
          expect(res.status).toBeLessThan(500);
        } else {
          expect(res.body.code).toBe('forbidden');
          expect(res.status).toBe(403);
          expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
          expect(res.body.refused).toEqual({ action: route.action });
          expect(res.body.detail).toContain(route.action);
        }
      });
    }
  }

  it('refuses a provider outside the grant with 403 naming the provider, on every route that names one', async () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/internal/connections/bexio/b1/token'],
      ['GET', '/internal/connections/bexio/b1'],
      ['GET', '/internal/connections?provider=bexio'],
    ];
    for (const [method, path, body] of routes) {
      const res = await t.broker.api(path, { method, body, headers: as(BILLING_NEW) });
      expect({ path, status: res.status, code: res.body.code, refused: res.body.refused }).toEqual({
        path,
        status: 403,
        code: 'forbidden',
        refused: { provider: 'bexio' },
      });
    }
    const onboarding: Array<[string, string, unknown?]> = [
      ['POST', '/internal/connect-sessions', { provider: 'bexio', connection_id: 'b9' }],
      ['PUT', '/internal/connections/bexio/b1', { access_token: 'at-x' }],
      ['DELETE', '/internal/connections/bexio/b1'],
    ];
    for (const [method, path, body] of onboarding) {
      const res = await t.broker.api(path, { method, body, headers: as(ONBOARDING) });
      expect({ path, status: res.status, refused: res.body.refused }).toEqual({
        path,
        status: 403,
        refused: { provider: 'bexio' },
      });
    }
    // Nothing was changed by the refused requests: b1 is still there, as imported.
    const b1 = await t.broker.api('/internal/connections/bexio/b1/token');
    expect(b1.body.access_token).toBe('at-bexio-b1');
  });

  it('answers a connection of another provider the same whether it exists or not, and an unknown provider too', async () => {
    const strip = (body: Record<string, unknown>) => {
      const { request_id: _id, ...rest } = body;
      return rest;
    };
    const existing = await t.broker.api('/internal/connections/bexio/b1/token', { headers: as(BILLING_NEW) });
    const missing = await t.broker.api('/internal/connections/bexio/nope/token', {
      headers: as(BILLING_NEW),
    });
    expect(existing.status).toBe(403);
    expect(missing.status).toBe(403);
    expect(strip(missing.body)).toEqual(strip(existing.body));
    expect(JSON.stringify(existing.body)).not.toContain('b1');
    const existingMeta = await t.broker.api('/internal/connections/bexio/b1', { headers: as(BILLING_NEW) });
    const missingMeta = await t.broker.api('/internal/connections/bexio/nope', { headers: as(BILLING_NEW) });
    expect(strip(missingMeta.body)).toEqual(strip(existingMeta.body));
    // A provider that does not exist, or is not enabled, is refused alike: no 404 tells them apart.
    for (const provider of ['no-such-provider', 'bonjoro']) {
      const res = await t.broker.api(`/internal/connections/${provider}/x/token`, {
        headers: as(BILLING_NEW),
      });
      expect({ provider, status: res.status, code: res.body.code }).toEqual({
        provider,
        status: 403,
        code: 'forbidden',
      });
    }
    // Within its grant, the same key does learn that a connection is missing.
    const own = await t.broker.api('/internal/connections/jobber/nope/token', { headers: as(BILLING_NEW) });
    expect(own.status).toBe(404);
    expect(own.body.code).toBe('connection_not_found');
  });

  it("lists only the grant's providers' connections, paged by the same cursor", async () => {
    const all = await t.broker.api('/internal/connections?limit=1000');
    expect(all.body.connections.map((c: { provider: string }) => c.provider)).toEqual(
      expect.arrayContaining(['bexio', 'jobber']),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t.broker.api(`/internal/connections?limit=1${cursor ? `&cursor=${cursor}` : ''}`, {
        headers: as(BILLING_OLD),
      });
      expect(res.status).toBe(200);
      seen.push(
        ...res.body.connections.map(
          (c: { provider: string; connection_id: string }) => `${c.provider}:${c.connection_id}`,
        ),
      );
      cursor = res.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 20);
    const jobber = all.body.connections
      .filter((c: { provider: string }) => c.provider === 'jobber')
      .map((c: { provider: string; connection_id: string }) => `${c.provider}:${c.connection_id}`);
    expect(seen).toEqual(jobber);
    expect(seen.some((s) => s.startsWith('bexio:'))).toBe(false);
    const whole = await t.broker.api('/internal/connections', { headers: as(BILLING_OLD) });
    expect(whole.body.connections.map((c: { provider: string }) => c.provider)).toEqual(
      jobber.map(() => 'jobber'),
    );
    expect(whole.body.next_cursor).toBeNull();
  });

  it('takes both keys of a service during a rotation, each as the service itself', async () => {
    const before = await t.broker.api('/internal/audit?connection_id=c2&provider=jobber&action=token');
    for (const key of [BILLING_OLD, BILLING_NEW]) {
      const res = await t.broker.api('/internal/connections/jobber/c2/token', { headers: as(key) });
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe('at-jobber-c2');
    }
    const after = await t.broker.api('/internal/audit?connection_id=c2&provider=jobber&action=token');
    const added = after.body.entries.slice(0, after.body.entries.length - before.body.entries.length);
    expect(added.map((e: { actor: string }) => e.actor)).toEqual(['billing', 'billing']);
  });

  it('keeps INTERNAL_API_KEYS keys working as before, with every right, as actor key:<8 hex>', async () => {
    const res = await t.broker.api('/internal/connections/bexio/b2/token');
    expect(res.status).toBe(200);
    const audit = await t.broker.api('/internal/audit?provider=bexio&connection_id=b2&action=token&limit=1');
    expect(audit.body.entries[0].actor).toBe(keyActor(TEST_INTERNAL_KEY));
  });

  it('shows an admin scoped to some providers only their audit entries and providers', async () => {
    expect((await t.broker.api('/internal/connections/bexio/b2/token')).status).toBe(200);
    const all = await t.broker.api('/internal/audit?limit=1000');
    expect(all.body.entries.some((e: { provider: string }) => e.provider === 'bexio')).toBe(true);
    const scoped = await t.broker.api('/internal/audit?limit=1000', { headers: as(AUDITOR) });
    expect(scoped.status).toBe(200);
    expect(scoped.body.entries.length).toBeGreaterThan(0);
    expect(scoped.body.entries).toEqual(
      all.body.entries.filter((e: { provider: string }) => e.provider === 'jobber'),
    );
    const other = await t.broker.api('/internal/audit?provider=bexio', { headers: as(AUDITOR) });
    expect({ status: other.status, refused: other.body.refused }).toEqual({
      status: 403,
      refused: { provider: 'bexio' },
    });
    const providers = await t.broker.api('/internal/providers', { headers: as(AUDITOR) });
    expect(providers.body.providers.map((p: { id: string }) => p.id)).toEqual(['jobber']);
  });

  it('counts refusals and hand-outs per actor in /metrics', async () => {
    await t.broker.api('/internal/connections/bexio/b1/token', { headers: as(BILLING_NEW) });
    await t.broker.api('/internal/connections/jobber/c1/token', { headers: as(BILLING_NEW) });
    await t.broker.api('/internal/providers', { headers: { authorization: 'Bearer wrong-key-0123456789' } });
    const metrics = await fetch(`${t.broker.internalUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/oauth_broker_auth_refusals_total\{actor="billing",code="forbidden"\} [1-9]/);
    expect(metrics).toMatch(/oauth_broker_auth_refusals_total\{actor="unknown",code="unauthorized"\} [1-9]/);
    expect(metrics).toMatch(
      /oauth_broker_credential_hand_outs_total\{actor="billing",action="token"\} [1-9]/,
    );
    // /readyz and /metrics stay open to every caller.
    expect((await fetch(`${t.broker.internalUrl}/readyz`)).status).toBe(200);
  });
});
