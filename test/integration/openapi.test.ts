import { TEST_INTERNAL_KEY, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { checkSchema, resolveRef } from '../helpers/schema-check';

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
};
type Operation = {
  operationId: string;
  parameters?: Array<{ name: string; in: string }>;
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/**
 * The OpenAPI document must be true: every answer the app really gives, driven here route by
 * route and status by status, has its status documented for that operation, its media type
 * documented, and a body that matches the documented schema (closed: no undocumented fields).
 * And every documented status is driven at least once.
 */
describe('OpenAPI 3.1 document of the internal API (GET /internal/openapi.json)', () => {
  let redis: TestRedis;
  let fake: FakeProvider;
  let broker: TestBroker;
  /** Same Redis and prefix, another key ring (for decryption_failed), auth failures limited (for 429). */
  let other: TestBroker;
  let doc: Doc;
  const driven = new Set<string>();

  beforeAll(async () => {
    redis = await TestRedis.start();
    fake = await FakeProvider.start({ expiresIn: 3600 });
    const providers = { ...providerEnv('jobber', fake.url), PROCESS_STREET_AUTH_MODE: 'api_key' };
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
      ...providers,
    });
    other = await startTestBroker({
      REDIS_URL: redis.url,
      TOKEN_ENCRYPTION_KEYS: `k9:${Buffer.alloc(32, 9).toString('base64')}`,
      AUTH_FAILURE_LIMIT_PER_MINUTE: '1',
      ...providers,
    });
    const res = await broker.api('/internal/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body as Doc;
  });

  afterAll(async () => {
    await other?.close();
    await broker?.close();
    await fake?.close();
    await redis?.close();
  });

  async function send(
    via: TestBroker,
    method: string,
    path: string,
    init: { key?: string | null; body?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    const key = init.key === undefined ? TEST_INTERNAL_KEY : init.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (init.body !== undefined) headers['content-type'] ??= 'application/json';
    const response = await fetch(`${via.internalUrl}${path}`, {
      method,
      headers,
      body: init.body,
      signal: AbortSignal.timeout(15_000),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      text: await response.text(),
    };
  }

  /** Drives one request and checks its answer against the operation `method template`. */
  async function drive(
    operation: string,
    path: string,
    init: {
      via?: TestBroker;
      key?: string | null;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Answer & { json: any }> {
    const [method, template] = operation.split(' ') as [string, string];
    const body = init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
    const answer = await send(init.via ?? broker, method, path, {
      key: init.key,
      body,
      headers: init.headers,
    });
    const op = doc.paths[template]?.[method.toLowerCase()] as Operation | undefined;
    expect({ operation, documented: op !== undefined }).toEqual({ operation, documented: true });
    const documented = op!.responses[String(answer.status)];
    expect({ operation, status: answer.status, documented: documented !== undefined }).toEqual({
      operation,
      status: answer.status,
      documented: true,
    });
    let json: any;
    if (documented!.content) {
      const mediaType = answer.contentType.split(';')[0]!.trim();
      expect({
        operation,
        status: answer.status,
        mediaType,
        documented: Object.keys(documented!.content),
      }).toEqual({
        operation,
        status: answer.status,
        mediaType,
        documented: expect.arrayContaining([mediaType]),
      });
      const value = mediaType.endsWith('json') ? (json = JSON.parse(answer.text)) : answer.text;
      const errors = checkSchema(documented!.content[mediaType]!.schema, value, { root: doc, closed: true });
      expect({ operation, status: answer.status, errors }).toEqual({
        operation,
        status: answer.status,
        errors: [],
      });
    } else {
      expect({ operation, status: answer.status, body: answer.text }).toEqual({
        operation,
        status: answer.status,
        body: '',
      });
    }
    driven.add(`${op!.operationId} ${answer.status}`);
    return { ...answer, json };
  }

  describe('the document', () => {
    it('has the shape of OpenAPI 3.1: version, info, paths of operations with unique ids and described responses', () => {
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
      expect(typeof doc.info.title).toBe('string');
      expect(typeof doc.info.version).toBe('string');
      const ids: string[] = [];
      for (const [template, item] of Object.entries(doc.paths)) {
        expect(template.startsWith('/')).toBe(true);
        for (const [method, value] of Object.entries(item)) {
          if (method === 'parameters') continue;
          expect(METHODS).toContain(method);
          const op = value as Operation;
          ids.push(op.operationId);
          expect(Object.keys(op.responses).length).toBeGreaterThan(0);
          for (const [status, response] of Object.entries(op.responses)) {
            expect(status).toMatch(/^([1-5]\d\d|default)$/);
            expect(typeof response.description).toBe('string');
          }
          // Every {param} of the template is declared as a path parameter.
          const declared = [...((item.parameters as Operation['parameters']) ?? []), ...(op.parameters ?? [])]
            .filter((p) => p.in === 'path')
            .map((p) => p.name)
            .sort();
          expect(declared).toEqual([...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort());
        }
      }
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('resolves every $ref, and documents every error as application/problem+json', () => {
      const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
      for (const ref of refs) expect(() => resolveRef(doc, JSON.parse(`{${ref}}`).$ref)).not.toThrow();
      for (const [template, item] of Object.entries(doc.paths)) {
        if (!template.startsWith('/internal/')) continue;
        for (const [method, value] of Object.entries(item)) {
          if (method === 'parameters') continue;
          for (const [status, response] of Object.entries((value as Operation).responses)) {
            if (status === 'default' || Number(status) >= 400)
              expect(Object.keys(response.content ?? {})).toEqual(['application/problem+json']);
          }
        }
      }
    });

    it('is served only with the internal key', async () => {
      await drive('GET /internal/openapi.json', '/internal/openapi.json');
      await drive('GET /internal/openapi.json', '/internal/openapi.json', { key: null });
    });
  });

  describe('every route and status', () => {
    it('POST /internal/connect-sessions: 201, 400, 401, 404 (unknown, not enabled), 413, 415', async () => {
      const created = await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
        body: {
          provider: 'jobber',
          connection_id: 'c1',
          return_to: 'https://app.example.com/integrations',
          scopes: ['a'],
        },
      });
      expect(created.status).toBe(201);
      expect(
        (
          await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
            body: { provider: 'jobber', connection_id: 'c1', extra: 1 },
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
            rawBody: '{not json',
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
            key: 'wrong',
            body: {},
          })
        ).status,
      ).toBe(401);
      const unknown = await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
        body: { provider: 'nope', connection_id: 'c1' },
      });
      expect([unknown.status, unknown.json.code]).toEqual([404, 'provider_not_found']);
      const disabled = await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
        body: { provider: 'bexio', connection_id: 'c1' },
      });
      expect([disabled.status, disabled.json.code]).toEqual([404, 'provider_not_enabled']);
      const big = { provider: 'jobber', connection_id: 'c1', scopes: Array(20_000).fill('scope') };
      expect(
        (await drive('POST /internal/connect-sessions', '/internal/connect-sessions', { body: big })).status,
      ).toBe(413);
      const encoded = await drive('POST /internal/connect-sessions', '/internal/connect-sessions', {
        body: { provider: 'jobber', connection_id: 'c1' },
        headers: { 'content-encoding': 'compress' },
      });
      expect(encoded.status).toBe(415);
    });

    it('PUT /internal/connections/{provider}/{connection_id}: 201, 200, api_key import, 400, 401, 404, 413, 415', async () => {
      const path = '/internal/connections/jobber/imp-1';
      const created = await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
        body: {
          access_token: 'a1',
          refresh_token: 'r1',
          expires_in: 3600,
          scopes: ['x'],
          token_type: 'bearer',
        },
      });
      expect(created.status).toBe(201);
      const replaced = await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
        body: { access_token: 'a2', expires_at: new Date(Date.now() + 3_600_000).toISOString() },
      });
      expect(replaced.status).toBe(200);
      const apiKey = await drive(
        'PUT /internal/connections/{provider}/{connection_id}',
        '/internal/connections/process-street/key-1',
        {
          body: { api_key: 'psk-123' },
        },
      );
      expect(apiKey.status).toBe(201);
      expect(
        (
          await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
            body: { access_token: 'a', expires_in: 1, expires_at: '2030-01-01T00:00:00Z' },
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
            key: null,
            body: { access_token: 'a' },
          })
        ).status,
      ).toBe(401);
      expect(
        (
          await drive(
            'PUT /internal/connections/{provider}/{connection_id}',
            '/internal/connections/nope/x',
            { body: { access_token: 'a' } },
          )
        ).status,
      ).toBe(404);
      expect(
        (
          await drive(
            'PUT /internal/connections/{provider}/{connection_id}',
            '/internal/connections/bexio/x',
            { body: { access_token: 'a' } },
          )
        ).status,
      ).toBe(404);
      expect(
        (
          await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
            body: { access_token: 'a'.repeat(70_000) },
          })
        ).status,
      ).toBe(413);
      const encoded = await drive('PUT /internal/connections/{provider}/{connection_id}', path, {
        body: { access_token: 'a' },
        headers: { 'content-type': 'application/json; charset=latin-9' },
      });
      expect(encoded.status).toBe(415);
    });

    it('the import schema accepts the bodies the app accepts', () => {
      const schema = { $ref: '#/components/schemas/ImportRequest' };
      for (const body of [
        { access_token: 'a1', refresh_token: 'r1', expires_in: 3600, scopes: ['x'], token_type: 'bearer' },
        { access_token: 'a2', expires_at: '2030-01-01T00:00:00Z', refresh_token: null },
        { access_token: 'a3', expires_in: '3600' },
        { api_key: 'psk-123' },
      ]) {
        expect({ body, errors: checkSchema(schema, body, { root: doc }) }).toEqual({ body, errors: [] });
      }
    });

    it('GET /internal/connections/{provider}/{connection_id}: 200, 400, 401, 404 (connection, provider, not enabled)', async () => {
      const template = 'GET /internal/connections/{provider}/{connection_id}';
      expect((await drive(template, '/internal/connections/jobber/imp-1')).status).toBe(200);
      expect((await drive(template, '/internal/connections/process-street/key-1')).status).toBe(200);
      expect((await drive(template, '/internal/connections/jobber/bad%20id')).status).toBe(400);
      expect((await drive(template, '/internal/connections/jobber/imp-1', { key: 'wrong' })).status).toBe(
        401,
      );
      expect((await drive(template, '/internal/connections/jobber/missing')).json.code).toBe(
        'connection_not_found',
      );
      expect((await drive(template, '/internal/connections/nope/x')).json.code).toBe('provider_not_found');
      expect((await drive(template, '/internal/connections/bexio/x')).json.code).toBe('provider_not_enabled');
    });

    it('GET …/token: 200 (oauth2 and api_key), 400, 401, 404, 409, 502 (unavailable, rejected client), 500', async () => {
      const template = 'GET /internal/connections/{provider}/{connection_id}/token';
      const connected = await broker.connect('jobber', 'tok-1');
      expect(connected.callback.status).toBe(200);
      expect(
        (await drive(template, '/internal/connections/jobber/tok-1/token?min_validity=60')).json.auth_mode,
      ).toBe('oauth2');
      expect((await drive(template, '/internal/connections/process-street/key-1/token')).json.auth_mode).toBe(
        'api_key',
      );
      expect((await drive(template, '/internal/connections/jobber/tok-1/token?min_validity=-1')).status).toBe(
        400,
      );
      expect(
        (await drive(template, '/internal/connections/jobber/tok-1/token?force_refresh=yes')).status,
      ).toBe(400);
      expect((await drive(template, '/internal/connections/jobber/tok-1/token', { key: null })).status).toBe(
        401,
      );
      expect((await drive(template, '/internal/connections/jobber/missing/token')).status).toBe(404);

      fake.failNext(2, 503, { error: 'temporarily_unavailable' });
      const unavailable = await drive(
        template,
        '/internal/connections/jobber/tok-1/token?force_refresh=true',
      );
      expect([unavailable.status, unavailable.json.code, unavailable.json.retryable]).toEqual([
        502,
        'provider_unavailable',
        true,
      ]);
      expect(typeof unavailable.json.current_token_expires_at).toBe('string');
      fake.failNext(1, 401, { error: 'invalid_client' });
      const rejected = await drive(template, '/internal/connections/jobber/tok-1/token?force_refresh=true');
      expect([rejected.status, rejected.json.code, rejected.json.retryable]).toEqual([
        502,
        'provider_rejected_client',
        false,
      ]);

      // Another process whose key ring lacks the key these tokens were sealed with.
      const undecryptable = await drive(template, '/internal/connections/jobber/tok-1/token', { via: other });
      expect([undecryptable.status, undecryptable.json.code]).toEqual([500, 'decryption_failed']);

      fake.onToken((_req, res) => void res.status(400).json({ error: 'invalid_grant' }));
      try {
        const reauth = await drive(template, '/internal/connections/jobber/tok-1/token?force_refresh=true');
        expect([reauth.status, reauth.json.code]).toEqual([409, 'reauthorization_required']);
      } finally {
        fake.onToken(undefined);
      }
    });

    it('GET /internal/connections: 200 (pages), 400, 401, 404', async () => {
      const template = 'GET /internal/connections';
      const page = await drive(template, '/internal/connections?limit=1');
      expect(page.status).toBe(200);
      expect(typeof page.json.next_cursor).toBe('string');
      expect(
        (await drive(template, `/internal/connections?limit=1&cursor=${page.json.next_cursor}`)).status,
      ).toBe(200);
      expect(
        (await drive(template, '/internal/connections?provider=jobber&limit=1000')).json.next_cursor,
      ).toBeNull();
      expect((await drive(template, '/internal/connections?limit=0')).status).toBe(400);
      expect((await drive(template, '/internal/connections?cursor=!!')).status).toBe(400);
      expect((await drive(template, '/internal/connections', { key: 'wrong' })).status).toBe(401);
      expect((await drive(template, '/internal/connections?provider=nope')).status).toBe(404);
    });

    it('PATCH /internal/connections/{provider}/{connection_id}: 200, 400, 401, 404, 413, 415; filtered listing 200', async () => {
      const template = 'PATCH /internal/connections/{provider}/{connection_id}';
      const path = '/internal/connections/jobber/imp-1';
      const patched = await drive(template, path, {
        body: { end_user: { id: 'u_1', email: 'u1@example.com' }, tags: { org: '42' } },
      });
      expect([patched.status, patched.json.end_user.id, patched.json.tags.org]).toEqual([200, 'u_1', '42']);
      const listed = await drive(
        'GET /internal/connections',
        '/internal/connections?end_user_id=u_1&tag=org:42',
      );
      expect(listed.json.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual([
        'imp-1',
      ]);
      expect((await drive(template, path, { body: { tags: { Bad: 'x' } } })).status).toBe(400);
      expect((await drive(template, path, { key: null, body: {} })).status).toBe(401);
      expect((await drive(template, '/internal/connections/jobber/missing', { body: {} })).json.code).toBe(
        'connection_not_found',
      );
      expect((await drive(template, path, { body: { tags: { a: 'v'.repeat(70_000) } } })).status).toBe(413);
      const encoded = await drive(template, path, { body: {}, headers: { 'content-encoding': 'compress' } });
      expect(encoded.status).toBe(415);
      const cleared = await drive(template, path, { body: { end_user: null, tags: {} } });
      expect([cleared.json.end_user, cleared.json.tags]).toEqual([null, {}]);
    });

    it('GET /internal/providers: 200, 401', async () => {
      const list = await drive('GET /internal/providers', '/internal/providers');
      expect(list.json.providers.map((p: { id: string }) => p.id).sort()).toEqual([
        'jobber',
        'process-street',
      ]);
      expect((await drive('GET /internal/providers', '/internal/providers', { key: null })).status).toBe(401);
    });

    it('DELETE /internal/connections/{provider}/{connection_id}: 204, 400, 401, 404', async () => {
      const template = 'DELETE /internal/connections/{provider}/{connection_id}';
      expect((await drive(template, '/internal/connections/jobber/imp-1')).status).toBe(204);
      expect((await drive(template, '/internal/connections/jobber/bad%20id')).status).toBe(400);
      expect((await drive(template, '/internal/connections/jobber/imp-1', { key: 'wrong' })).status).toBe(
        401,
      );
      expect((await drive(template, '/internal/connections/jobber/imp-1')).status).toBe(404);
    });

    it('GET /readyz and GET /metrics: 200, without a key', async () => {
      expect((await drive('GET /readyz', '/readyz', { key: null })).status).toBe(200);
      const metrics = await drive('GET /metrics', '/metrics', { key: null });
      expect(metrics.text).toContain('oauth_broker_http_requests_total');
    });

    it('every /internal operation: 429 after too many failed authentications', async () => {
      let status = 0;
      for (let i = 0; i < 5 && status !== 429; i++)
        status = (await send(other, 'GET', '/internal/providers', { key: 'wrong' })).status;
      expect(status).toBe(429);
      const operations: Array<[string, string]> = [
        ['POST /internal/connect-sessions', '/internal/connect-sessions'],
        ['GET /internal/connections', '/internal/connections'],
        ['GET /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/x'],
        ['PUT /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/x'],
        ['DELETE /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/x'],
        ['PATCH /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/x'],
        [
          'GET /internal/connections/{provider}/{connection_id}/token',
          '/internal/connections/jobber/x/token',
        ],
        ['GET /internal/providers', '/internal/providers'],
        ['GET /internal/openapi.json', '/internal/openapi.json'],
      ];
      for (const [operation, path] of operations) {
        const answer = await drive(operation, path, {
          via: other,
          key: 'wrong',
          body: operation.startsWith('P') ? {} : undefined,
        });
        expect({ operation, status: answer.status }).toEqual({ operation, status: 429 });
      }
    });

    // Last: stops this file's Redis.
    it('every operation that needs Redis: 503 store_unavailable while Redis is down; /readyz 503', async () => {
      await redis.stop();
      const operations: Array<[string, string, unknown?]> = [
        [
          'POST /internal/connect-sessions',
          '/internal/connect-sessions',
          { provider: 'jobber', connection_id: 'c1' },
        ],
        ['GET /internal/connections', '/internal/connections'],
        ['GET /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/tok-1'],
        [
          'PUT /internal/connections/{provider}/{connection_id}',
          '/internal/connections/jobber/tok-1',
          { access_token: 'a' },
        ],
        ['DELETE /internal/connections/{provider}/{connection_id}', '/internal/connections/jobber/tok-1'],
        [
          'PATCH /internal/connections/{provider}/{connection_id}',
          '/internal/connections/jobber/tok-1',
          { tags: { a: 'b' } },
        ],
        [
          'GET /internal/connections/{provider}/{connection_id}/token',
          '/internal/connections/jobber/tok-1/token',
        ],
      ];
      for (const [operation, path, body] of operations) {
        const answer = await drive(operation, path, { body });
        expect({ operation, status: answer.status, code: answer.json.code }).toEqual({
          operation,
          status: 503,
          code: 'store_unavailable',
        });
      }
      expect((await drive('GET /readyz', '/readyz', { key: null })).status).toBe(503);
    });
  });

  it('documents no status the app was not seen to answer', () => {
    const documented: string[] = [];
    for (const item of Object.values(doc.paths)) {
      for (const [method, value] of Object.entries(item)) {
        if (method === 'parameters') continue;
        const op = value as Operation;
        // `default` covers the unexpected (a generic 500 internal_error), which no request can provoke.
        for (const status of Object.keys(op.responses))
          if (status !== 'default') documented.push(`${op.operationId} ${status}`);
      }
    }
    expect(documented.filter((d) => !driven.has(d)).sort()).toEqual([]);
  });
});
