import { Server, createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { until } from '../helpers/until';

/** The metadata fields docs/api.md lists for `GET /internal/connections/:provider/:connection_id`. */
const METADATA_FIELDS = [
  'auth_mode',
  'connection_id',
  'created_at',
  'end_user',
  'expires_at',
  'key_id',
  'last_error',
  'last_refreshed_at',
  'next_refresh_at',
  'provider',
  'refresh_failures',
  'scopes',
  'status',
  'tags',
  'updated_at',
].sort();

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('connections: import (PUT), metadata (GET), delete and listing', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: TestBroker;
  /** A revocation endpoint that holds every request until released. */
  let holdingServer: Server;
  const held: Array<{ req: IncomingMessage; res: ServerResponse; body: string }> = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start();
    holdingServer = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => held.push({ req, res, body }));
    });
    await new Promise<void>((r) => holdingServer.listen(0, '127.0.0.1', () => r()));
    const holdingUrl = `http://127.0.0.1:${(holdingServer.address() as AddressInfo).port}`;
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      ...providerEnv('bonjoro', fake.url),
      ...providerEnv('bexio', fake.url, { BEXIO_ISSUER: '' }),
      ...providerEnv('respond-io', fake.url),
      ...providerEnv('process-street', fake.url, { PROCESS_STREET_REVOCATION_URL: `${holdingUrl}/revoke` }),
    });
  });

  afterAll(async () => {
    for (const h of held) h.res.end();
    await broker.close();
    holdingServer.closeAllConnections();
    await new Promise<void>((r) => holdingServer.close(() => r()));
    await fake.close();
    await redis.close();
  });

  describe('PUT import', () => {
    it('answers 201 with the metadata for a new connection, then 200 when it replaces it', async () => {
      const first = await broker.api('/internal/connections/bonjoro/imp-1', {
        method: 'PUT',
        body: {
          access_token: 'imp1-access-A',
          refresh_token: 'imp1-refresh-A',
          expires_in: 3600,
          scopes: ['read'],
        },
      });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({
        provider: 'bonjoro',
        connection_id: 'imp-1',
        status: 'active',
        scopes: ['read'],
      });

      const second = await broker.api('/internal/connections/bonjoro/imp-1', {
        method: 'PUT',
        body: { access_token: 'imp1-access-B', expires_in: 60 },
      });
      expect(second.status).toBe(200);
      expect(second.body.created_at).toBe(first.body.created_at);
      expect(Date.parse(second.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(first.body.updated_at));

      const token = await broker.api('/internal/connections/bonjoro/imp-1/token?min_validity=0');
      expect(token.status).toBe(200);
      expect(token.body.access_token).toBe('imp1-access-B');
    });

    it('answers the metadata fields the contract lists, exactly, and no secret among them', async () => {
      const put = await broker.api('/internal/connections/bonjoro/meta-1', {
        method: 'PUT',
        body: {
          access_token: 'meta1-secret-access',
          refresh_token: 'meta1-secret-refresh',
          expires_in: 3600,
          token_type: 'Bearer',
        },
      });
      expect(put.status).toBe(201);
      const got = await broker.api('/internal/connections/bonjoro/meta-1');
      expect(got.status).toBe(200);
      for (const meta of [put.body, got.body]) {
        expect(Object.keys(meta).sort()).toEqual(METADATA_FIELDS);
        expect(meta).toMatchObject({
          provider: 'bonjoro',
          connection_id: 'meta-1',
          auth_mode: 'oauth2',
          status: 'active',
          scopes: [],
          last_refreshed_at: null,
          last_error: null,
          refresh_failures: 0,
          key_id: 'k1',
        });
        expect(meta.expires_at).toMatch(ISO);
        expect(meta.created_at).toMatch(ISO);
        expect(meta.updated_at).toMatch(ISO);
        const text = JSON.stringify(meta);
        expect(text).not.toContain('meta1-secret-access');
        expect(text).not.toContain('meta1-secret-refresh');
        expect(text).not.toContain('sealed');
      }
    });

    it('uses the provider default scopes when the import names none', async () => {
      const put = await broker.api('/internal/connections/bexio/default-scopes', {
        method: 'PUT',
        body: { access_token: 'ds-access' },
      });
      expect(put.status).toBe(201);
      expect(put.body.scopes).toEqual(['openid', 'offline_access']);
    });

    it('computes expires_at from expires_in (number or numeric string)', async () => {
      for (const expiresIn of [1800, '1800']) {
        const before = Date.now();
        const put = await broker.api('/internal/connections/bonjoro/exp-in', {
          method: 'PUT',
          body: { access_token: 'x', expires_in: expiresIn },
        });
        const after = Date.now();
        expect(put.status).toBeLessThan(300);
        const at = Date.parse(put.body.expires_at);
        expect(at).toBeGreaterThanOrEqual(before + 1800_000 - 1000);
        expect(at).toBeLessThanOrEqual(after + 1800_000 + 1000);
      }
    });

    it('keeps expires_at as given', async () => {
      const expiresAt = new Date(Date.now() + 7200_000).toISOString();
      const put = await broker.api('/internal/connections/bonjoro/exp-at', {
        method: 'PUT',
        body: { access_token: 'x', expires_at: expiresAt },
      });
      expect(put.status).toBe(201);
      expect(put.body.expires_at).toBe(expiresAt);
      const token = await broker.api('/internal/connections/bonjoro/exp-at/token');
      expect(token.body.expires_at).toBe(expiresAt);
    });

    it('stores an unknown expiry when neither is given, and serves the token with expires_at null', async () => {
      const put = await broker.api('/internal/connections/bonjoro/exp-none', {
        method: 'PUT',
        body: { access_token: 'no-exp-token' },
      });
      expect(put.status).toBe(201);
      expect(put.body.expires_at).toBeNull();
      const token = await broker.api('/internal/connections/bonjoro/exp-none/token?min_validity=86400');
      expect(token.status).toBe(200);
      expect(token.body).toMatchObject({
        access_token: 'no-exp-token',
        expires_at: null,
        token_type: 'Bearer',
      });
    });

    it('refuses expires_at together with expires_in with 400 invalid_request, and stores nothing', async () => {
      const res = await broker.api('/internal/connections/bonjoro/both-exp', {
        method: 'PUT',
        body: { access_token: 'x', expires_in: 60, expires_at: new Date(Date.now() + 60_000).toISOString() },
      });
      expect(res.body.code).toBe('invalid_request');
      expect(res.status).toBe(400);
      expect((await broker.api('/internal/connections/bonjoro/both-exp')).status).toBe(404);
    });

    it('answers 404 connection_not_found for metadata of a connection that does not exist', async () => {
      const res = await broker.api('/internal/connections/bonjoro/never-there');
      expect(res.body.code).toBe('connection_not_found');
      expect(res.status).toBe(404);
    });
  });

  describe('DELETE', () => {
    it('answers 204, then 404 for the metadata, the token and a second delete', async () => {
      await broker.api('/internal/connections/bonjoro/del-1', {
        method: 'PUT',
        body: { access_token: 'del1-access', refresh_token: 'del1-refresh' },
      });
      const del = await broker.api('/internal/connections/bonjoro/del-1', { method: 'DELETE' });
      expect(del.status).toBe(204);
      for (const [path, method] of [
        ['/internal/connections/bonjoro/del-1', 'GET'],
        ['/internal/connections/bonjoro/del-1/token', 'GET'],
        ['/internal/connections/bonjoro/del-1', 'DELETE'],
      ] as const) {
        const res = await broker.api(path, { method });
        expect(res.body.code).toBe('connection_not_found');
        expect(res.status).toBe(404);
      }
      const listed = await broker.api('/internal/connections?provider=bonjoro&limit=1000');
      expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).not.toContain(
        'del-1',
      );
    });

    it('revokes the refresh token at the provider after answering (RFC 7009)', async () => {
      await broker.api('/internal/connections/bonjoro/del-rt', {
        method: 'PUT',
        body: { access_token: 'delrt-access', refresh_token: 'delrt-refresh' },
      });
      const before = fake.revocations.length;
      expect((await broker.api('/internal/connections/bonjoro/del-rt', { method: 'DELETE' })).status).toBe(
        204,
      );
      const revocation = await until(() => fake.revocations[before]);
      expect(revocation.params.token).toBe('delrt-refresh');
      expect(revocation.params.token_type_hint).toBe('refresh_token');
      // bonjoro authenticates with client_secret_basic (the catalogue default).
      expect(String(revocation.headers.authorization)).toBe(
        `Basic ${Buffer.from('bonjoro-client:bonjoro-secret').toString('base64')}`,
      );
      expect(fake.revocations.length).toBe(before + 1);
    });

    it('revokes the access token when there is no refresh token', async () => {
      await broker.api('/internal/connections/bonjoro/del-at', {
        method: 'PUT',
        body: { access_token: 'delat-access' },
      });
      const before = fake.revocations.length;
      expect((await broker.api('/internal/connections/bonjoro/del-at', { method: 'DELETE' })).status).toBe(
        204,
      );
      const revocation = await until(() => fake.revocations[before]);
      expect(revocation.params.token).toBe('delat-access');
      expect(revocation.params.token_type_hint).toBe('access_token');
    });

    it('answers 204 while the revocation endpoint has not answered yet', async () => {
      await broker.api('/internal/connections/process-street/del-slow', {
        method: 'PUT',
        body: { access_token: 'ps-access', refresh_token: 'ps-refresh' },
      });
      const before = held.length;
      const del = await broker.api('/internal/connections/process-street/del-slow', { method: 'DELETE' });
      expect(del.status).toBe(204);
      const request = await until(() => held[before]);
      // The revocation was still unanswered when the delete was answered.
      expect(request.res.writableEnded).toBe(false);
      expect(new URLSearchParams(request.body).get('token')).toBe('ps-refresh');
      request.res.end();
    });
  });

  describe('GET /internal/connections (listing)', () => {
    const BEXIO = 70;
    const RESPOND = 50;

    beforeAll(async () => {
      const puts: Array<Promise<unknown>> = [];
      for (let i = 0; i < BEXIO; i++) {
        puts.push(
          broker.api(`/internal/connections/bexio/list-${String(i).padStart(3, '0')}`, {
            method: 'PUT',
            body: { access_token: `bx-${i}` },
          }),
        );
      }
      for (let i = 0; i < RESPOND; i++) {
        puts.push(
          broker.api(`/internal/connections/respond-io/list:${i}@x`, {
            method: 'PUT',
            body: { access_token: `ri-${i}` },
          }),
        );
      }
      const answers = (await Promise.all(puts)) as Array<{ status: number }>;
      expect(answers.every((a) => a.status === 201)).toBe(true);
    });

    async function pageThrough(
      query: string,
      limit: number,
    ): Promise<{ ids: string[]; pages: number; metas: any[] }> {
      const ids: string[] = [];
      const metas: any[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q = new URLSearchParams(query);
        q.set('limit', String(limit));
        if (cursor) q.set('cursor', cursor);
        const res = await broker.api(`/internal/connections?${q.toString()}`);
        expect(res.status).toBe(200);
        expect(res.body.connections.length).toBeLessThanOrEqual(limit);
        for (const c of res.body.connections) {
          ids.push(`${c.provider}/${c.connection_id}`);
          metas.push(c);
        }
        cursor = res.body.next_cursor;
        pages += 1;
        if (pages > 1000) throw new Error('the listing does not end');
      } while (cursor !== null);
      return { ids, pages, metas };
    }

    it('pages through every connection of two providers without duplicates, ending with next_cursor null', async () => {
      const { ids, metas } = await pageThrough('', 7);
      expect(new Set(ids).size).toBe(ids.length);
      for (let i = 0; i < BEXIO; i++) expect(ids).toContain(`bexio/list-${String(i).padStart(3, '0')}`);
      for (let i = 0; i < RESPOND; i++) expect(ids).toContain(`respond-io/list:${i}@x`);
      for (const meta of metas) expect(Object.keys(meta).sort()).toEqual(METADATA_FIELDS);
      const text = JSON.stringify(metas);
      expect(text).not.toMatch(/"bx-\d+"|"ri-\d+"/);
    });

    it('filters by provider', async () => {
      const bexio = await pageThrough('provider=bexio', 9);
      const own = bexio.ids.filter((id) => id.startsWith('bexio/list-'));
      expect(own).toHaveLength(BEXIO);
      expect(bexio.ids.every((id) => id.startsWith('bexio/'))).toBe(true);
      expect(new Set(bexio.ids).size).toBe(bexio.ids.length);

      const respond = await pageThrough('provider=respond-io', 1000);
      expect(respond.ids).toHaveLength(RESPOND);
      expect(respond.pages).toBe(1);
    });

    it('answers next_cursor null on the page that holds the last connection', async () => {
      const exact = await broker.api(`/internal/connections?provider=respond-io&limit=${RESPOND}`);
      expect(exact.body.connections).toHaveLength(RESPOND);
      expect(exact.body.next_cursor).toBeNull();
      const half = await broker.api(`/internal/connections?provider=respond-io&limit=${RESPOND / 2}`);
      expect(half.body.next_cursor).not.toBeNull();
      const rest = await broker.api(
        `/internal/connections?provider=respond-io&limit=${RESPOND / 2}&cursor=${half.body.next_cursor}`,
      );
      expect(rest.body.connections).toHaveLength(RESPOND / 2);
      expect(rest.body.next_cursor).toBeNull();
    });

    it("takes the empty parameters of the contract's own example (?provider=&cursor=&limit=) as absent", async () => {
      const res = await broker.api('/internal/connections?provider=&cursor=&limit=');
      expect(res.status).toBe(200);
      expect(res.body.connections).toHaveLength(50);
      const plain = await broker.api('/internal/connections');
      expect(res.body).toEqual(plain.body);
    });

    it('uses a default page size of 50', async () => {
      const res = await broker.api('/internal/connections');
      expect(res.body.connections).toHaveLength(50);
      expect(res.body.next_cursor).not.toBeNull();
    });

    it('answers an empty last page for a provider with no connections', async () => {
      const res = await broker.api('/internal/connections?provider=jobber');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ connections: [], next_cursor: null });
    });

    it('skips a connection deleted between two pages', async () => {
      const all = (await broker.api('/internal/connections?provider=bexio&limit=1000')).body.connections.map(
        (c: { connection_id: string }) => c.connection_id,
      );
      const first = await broker.api('/internal/connections?provider=bexio&limit=10');
      expect(first.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual(
        all.slice(0, 10),
      );
      const nextId = all[10];
      expect((await broker.api(`/internal/connections/bexio/${nextId}`, { method: 'DELETE' })).status).toBe(
        204,
      );
      const second = await broker.api(
        `/internal/connections?provider=bexio&limit=10&cursor=${first.body.next_cursor}`,
      );
      expect(second.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual(
        all.slice(11, 21),
      );
    });
  });
});
