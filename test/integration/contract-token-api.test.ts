import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { ApiAnswer } from '../helpers/broker-process';
import { TestBrowser } from '../helpers/browser';
import { dumpRedis } from '../helpers/contract-process';
import {
  SECOND_KEY,
  ISO_8601,
  expectProblem,
  openFlow,
  callback,
  connectInBrowser,
  useContractSuite,
  expectKeptOut,
  verifiersSeenBy,
} from '../helpers/contract-suite';

/**
 * The internal token API of the built broker, from outside (docs/api.md, the token API): token
 * answers, min_validity and force_refresh, import, metadata, delete and the listing; then what sits
 * in Redis (key prefixes, hash tags) and that no secret reaches Redis, a log line or /metrics.
 */
describe('contract, from outside on node dist/main.js: the internal token API and what it stores', () => {
  const suite = useContractSuite(2);

  beforeAll(async () => {
    // The listing below expects connections made through the browser, as the connect flow makes them.
    await connectInBrowser(suite.b1, 'jobber', 'multi-a', 'code-multi-a');
    await connectInBrowser(suite.b1, 'jobber', 'a.B_9:x@y-z', 'code-a.B_9:x@y-z');
  });

  describe('internal token API', () => {
    beforeAll(async () => {
      const browser = new TestBrowser();
      const flow = await openFlow(suite.b1, browser, 'jobber', 'acct-tok');
      expect(
        (await callback(suite.b1, browser, 'jobber', { code: 'code-tok', state: flow.state })).status,
      ).toBe(200);
    });

    it('answers {access_token, token_type, expires_at, scopes, auth_mode: "oauth2"} for an oauth2 connection', async () => {
      const res = await suite.b1.api('/internal/connections/jobber/acct-tok/token');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.body).toEqual(
        expect.objectContaining({
          access_token: expect.any(String),
          token_type: 'Bearer',
          scopes: [],
          auth_mode: 'oauth2',
        }),
      );
      expect(res.body.expires_at).toMatch(ISO_8601);
      expect(suite.fake.issued.some((t) => t.access_token === res.body.access_token)).toBe(true);
    });

    it('refuses min_validity and force_refresh outside the rules with 400 invalid_request, and takes the edges', async () => {
      for (const query of [
        'min_validity=abc',
        'min_validity=-1',
        'min_validity=1.5',
        'min_validity=86401',
        'min_validity=',
        'min_validity=1&min_validity=2',
        'force_refresh=yes',
        'force_refresh=1',
        'force_refresh=TRUE',
        'force_refresh=',
      ]) {
        const res = await suite.b1.api(`/internal/connections/jobber/acct-tok/token?${query}`);
        expect({ query, status: res.status, code: res.body?.code }).toEqual({
          query,
          status: 400,
          code: 'invalid_request',
        });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      const current = (await suite.b1.api('/internal/connections/jobber/acct-tok/token')).body.access_token;
      const refreshes = suite.fake.refreshRequests.length;
      expect(
        (await suite.b1.api('/internal/connections/jobber/acct-tok/token?min_validity=0&force_refresh=false'))
          .body.access_token,
      ).toBe(current);
      expect(suite.fake.refreshRequests.length).toBe(refreshes);

      // A token living an hour cannot satisfy a day: refreshed, and the fresh token answered 200.
      const day = await suite.b1.api('/internal/connections/jobber/acct-tok/token?min_validity=86400');
      expect(day.status).toBe(200);
      expect(day.body.access_token).not.toBe(current);
      expect(suite.fake.refreshRequests.length).toBe(refreshes + 1);

      const forced = await suite.b1.api('/internal/connections/jobber/acct-tok/token?force_refresh=true');
      expect(forced.status).toBe(200);
      expect(forced.body.access_token).not.toBe(day.body.access_token);
      expect(suite.fake.refreshRequests.length).toBe(refreshes + 2);
    });

    it('imports with PUT (201 new, 200 replaced, created_at kept), shows metadata without secrets, deletes with 204, then 404', async () => {
      const path = '/internal/connections/jobber/acct-put';
      const created = await suite.b1.api(path, {
        method: 'PUT',
        body: { access_token: 'imported-access-1', refresh_token: 'imported-refresh-1', expires_in: 3600 },
      });
      expect(created.status).toBe(201);
      expect(Object.keys(created.body).sort()).toEqual(
        expect.arrayContaining(
          [
            'provider',
            'connection_id',
            'auth_mode',
            'status',
            'scopes',
            'expires_at',
            'created_at',
            'updated_at',
            'last_refreshed_at',
            'last_error',
            'refresh_failures',
            'next_refresh_at',
            'key_id',
          ].sort(),
        ),
      );
      expect(created.body).toMatchObject({
        provider: 'jobber',
        connection_id: 'acct-put',
        auth_mode: 'oauth2',
        status: 'active',
        last_refreshed_at: null,
        last_error: null,
        refresh_failures: 0,
        key_id: 'k1',
      });
      expect(JSON.stringify(created.body)).not.toMatch(/imported-(access|refresh)/);
      await new Promise((r) => setTimeout(r, 5));
      const replaced = await suite.b1.api(path, {
        method: 'PUT',
        body: {
          access_token: 'imported-access-2',
          expires_at: new Date(Date.now() + 7_200_000).toISOString(),
        },
      });
      expect(replaced.status).toBe(200);
      expect(replaced.body.created_at).toBe(created.body.created_at);
      expect((await suite.b1.api(`${path}/token`)).body.access_token).toBe('imported-access-2');
      expectProblem(
        await suite.b1.api(path, {
          method: 'PUT',
          body: { access_token: 'x', expires_in: 60, expires_at: new Date().toISOString() },
        }),
        400,
        'invalid_request',
      );
      expect((await suite.b1.api(`${path}/token`)).body.access_token).toBe('imported-access-2');

      const gone = await suite.b1.api(path, { method: 'DELETE' });
      expect(gone.status).toBe(204);
      expect(gone.body).toBeUndefined();
      expectProblem(await suite.b1.api(path), 404, 'connection_not_found');
      expectProblem(await suite.b1.api(`${path}/token`), 404, 'connection_not_found');
    });

    it('lists connections page by page ({connections, next_cursor}, null at the end) and refuses a limit outside 1-1000', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: ApiAnswer = await suite.b1.api(
          `/internal/connections?provider=jobber&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.status).toBe(200);
        expect(page.body.connections.length).toBeLessThanOrEqual(2);
        for (const c of page.body.connections) {
          expect(c.provider).toBe('jobber');
          expect(c).not.toHaveProperty('access_token');
          seen.push(c.connection_id);
        }
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      expect(seen).toEqual(expect.arrayContaining(['acct-tok', 'multi-a', 'a.B_9:x@y-z']));
      expect(new Set(seen).size).toBe(seen.length);
      for (const limit of ['0', '1001', 'x'])
        expectProblem(await suite.b1.api(`/internal/connections?limit=${limit}`), 400, 'invalid_request');
    });
  });

  describe('Redis keys and what is kept in them', () => {
    it("keeps two brokers with different REDIS_KEY_PREFIX apart on one Redis; a connection's keys carry {provider:connection_id} after the prefix", async () => {
      const path = '/internal/connections/jobber/shared-1';
      expect(
        (await suite.b1.api(path, { method: 'PUT', body: { access_token: 'tenant-one-access' } })).status,
      ).toBe(201);
      expect(
        (await suite.b2.api(path, { method: 'PUT', body: { access_token: 'tenant-two-access' } })).status,
      ).toBe(201);
      expect((await suite.b1.api(`${path}/token`)).body.access_token).toBe('tenant-one-access');
      expect((await suite.b2.api(`${path}/token`)).body.access_token).toBe('tenant-two-access');
      expectProblem(await suite.b2.api('/internal/connections/jobber/acct-tok'), 404, 'connection_not_found');
      const listed = await suite.b2.api('/internal/connections?limit=1000');
      expect(listed.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([
        'shared-1',
      ]);

      const keys = [...(await dumpRedis(suite.redisClient)).keys()];
      expect(keys.filter((k) => k.startsWith('ob:{jobber:shared-1}')).length).toBeGreaterThan(0);
      expect(keys.filter((k) => k.startsWith('tenant2:{jobber:shared-1}')).length).toBeGreaterThan(0);
      // Every key of a connection carries its tag right after the prefix.
      expect(
        keys.filter((k) => k.includes('jobber:shared-1') && !/^(ob:|tenant2:)\{jobber:shared-1\}/.test(k)),
      ).toEqual([]);

      expect((await suite.b2.api(path, { method: 'DELETE' })).status).toBe(204);
      const after = [...(await dumpRedis(suite.redisClient)).keys()];
      expect(after.filter((k) => k.startsWith('tenant2:{jobber:shared-1}'))).toEqual([]);
      expect((await suite.b1.api(`${path}/token`)).body.access_token).toBe('tenant-one-access');
    });

    it('writes every key under its prefix, and no plaintext token or client secret to Redis, a log line or /metrics', async () => {
      const dump = await dumpRedis(suite.redisClient);
      expect([...dump.keys()].filter((k) => !k.startsWith('ob:') && !k.startsWith('tenant2:'))).toEqual([]);
      const secrets = [
        ...suite.fake.issued.flatMap((t) => [t.access_token, t.refresh_token ?? '']),
        'imported-access-2',
        'tenant-one-access',
        'jobber-secret',
        'process-street-secret',
        'bexio-secret',
      ].filter(Boolean);
      expect(secrets.length).toBeGreaterThan(10);
      // Nor the codes, verifiers, session secret, data key or internal API keys in a log line.
      await expectKeptOut(suite, secrets, [
        ...verifiersSeenBy(suite.fake),
        'code-tok',
        'a-session-secret-that-is-long-enough',
        Buffer.alloc(32, 7).toString('base64'),
        TEST_INTERNAL_KEY,
        SECOND_KEY,
      ]);
    });
  });
});
