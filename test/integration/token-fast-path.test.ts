import express from 'express';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { until } from '../helpers/until';

/**
 * The token API's common case is answered in front of the Express app (src/http/routes/token-route.ts);
 * every other spelling the router accepts (a trailing slash, an escaped character, another case)
 * goes through the router. Both must answer alike in every case: status, headers, body, metrics.
 * Express's `res.json` runs on the router's way only, which tells the two apart here.
 */
describe('token API: the fast path and the router answer alike', () => {
  const t = useBrokerOnRedis();
  const bearer = { authorization: `Bearer ${TEST_INTERNAL_KEY}` };
  let json: jest.SpyInstance;

  beforeAll(async () => {
    const put = async (id: string, body: object) => {
      const res = await fetch(`${t.broker.internalUrl}/internal/connections/jobber/${id}`, {
        method: 'PUT',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect([200, 201]).toContain(res.status);
    };
    await put('fp-fresh', { access_token: 'at-fp-fresh', refresh_token: 'rt-fp', expires_in: 3600 });
    // A refresh token the fake provider never issued: refreshing it is invalid_grant.
    await put('fp-revoked', { access_token: 'at-fp-revoked', refresh_token: 'rt-unknown', expires_in: 3600 });
    json = jest.spyOn(express.response, 'json');
  });

  afterAll(() => json.mockRestore());

  interface Answer {
    status: number;
    headers: Record<string, string | null>;
    body: Record<string, unknown>;
    viaRouter: boolean;
  }

  const ask = async (path: string, headers: Record<string, string> = bearer): Promise<Answer> => {
    const before = json.mock.contexts.length;
    const res = await fetch(`${t.broker.internalUrl}${path}`, { headers });
    const body = (await res.json()) as Record<string, unknown>;
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    if ('request_id' in body) {
      expect(body.request_id).toBe(requestId);
      delete body.request_id;
    }
    const shown = [
      'content-type',
      'content-length',
      'cache-control',
      'x-content-type-options',
      'www-authenticate',
      'retry-after',
    ];
    return {
      status: res.status,
      headers: Object.fromEntries(shown.map((h) => [h, res.headers.get(h)])),
      body,
      // res.json on the broker's answer to this very request (the fake provider uses it too).
      viaRouter: (json.mock.contexts.slice(before) as Array<{ req?: { originalUrl?: string } }>).some(
        (r) => r.req?.originalUrl === path,
      ),
    };
  };

  /** The same request as the fast path's spelling and as two router-only spellings. */
  const spellings = (id: string, query = '') => [
    `/internal/connections/jobber/${id}/token${query}`,
    `/internal/connections/jobber/${id}/token/${query}`,
    `/internal/connections/jobber/${id.replace('-', '%2D')}/token${query}`,
  ];

  const expectAlike = async (id: string, query = '', headers?: Record<string, string>) => {
    // One at a time: the res.json count tells which way each one went.
    const answers: Answer[] = [];
    for (const path of spellings(id, query)) answers.push(await ask(path, headers));
    const [fast, ...routed] = answers;
    for (const other of routed) {
      expect(other.status).toBe(fast!.status);
      expect(other.headers).toEqual(fast!.headers);
      expect(other.body).toEqual(fast!.body);
    }
    return { fast: fast!, routed };
  };

  it('serves a fresh token on the fast path, exactly as the router does', async () => {
    const { fast, routed } = await expectAlike('fp-fresh');
    expect(fast.status).toBe(200);
    expect(fast.viaRouter).toBe(false);
    for (const r of routed) expect(r.viaRouter).toBe(true);
    expect(fast.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    expect(fast.body).toMatchObject({
      auth_mode: 'oauth2',
      access_token: 'at-fp-fresh',
      token_type: 'Bearer',
    });
    // With a query the router's parser would read the same way.
    const withQuery = await expectAlike('fp-fresh', '?min_validity=60&force_refresh=false');
    expect(withQuery.fast.viaRouter).toBe(false);
    expect(withQuery.fast.body).toEqual(fast.body);
  });

  it('answers problems thrown by the work (404, 409) alike, from the fast path too', async () => {
    const missing = await expectAlike('fp-missing');
    expect(missing.fast.status).toBe(404);
    expect(missing.fast.body.code).toBe('connection_not_found');
    expect(missing.fast.headers['content-type']).toBe('application/problem+json; charset=utf-8');

    const first = await ask('/internal/connections/jobber/fp-revoked/token?force_refresh=true');
    expect(first.status).toBe(409);
    expect(first.viaRouter).toBe(false);
    const refreshes = t.fake.refreshRequests.length;
    const revoked = await expectAlike('fp-revoked');
    expect(revoked.fast.status).toBe(409);
    expect(revoked.fast.body.code).toBe('reauthorization_required');
    // Answered from the stored status: the provider is not asked again, on either way.
    expect(t.fake.refreshRequests.length).toBe(refreshes);
  });

  it('leaves bad input and missing or wrong keys to the router, which answers 4xx as before', async () => {
    for (const query of ['?min_validity=-1', '?force_refresh=yes', '?min_validity=1&min_validity=2']) {
      const bad = await expectAlike('fp-fresh', query);
      expect(bad.fast.status).toBe(400);
      expect(bad.fast.body.code).toBe('invalid_request');
    }
    const unknown = await ask('/internal/connections/nope/fp-fresh/token');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('provider_not_found');

    const denials: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-key' },
      { authorization: TEST_INTERNAL_KEY },
    ];
    for (const headers of denials) {
      const denied = await expectAlike('fp-fresh', '', headers);
      expect(denied.fast.status).toBe(401);
      expect(denied.fast.headers['www-authenticate']).toMatch(/^Bearer realm=/);
      expect(denied.fast.body.code).toBe('unauthorized');
      expect(JSON.stringify(denied.fast.body)).not.toContain('at-fp-fresh');
    }
  });

  it('counts both ways under the one route pattern in the request metrics', async () => {
    const count = async () => {
      const text = await (await fetch(`${t.broker.internalUrl}/metrics`)).text();
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('oauth_broker_http_requests_total{') &&
            l.includes('route="/internal/connections/:provider/:connection_id/token"') &&
            l.includes('status="200"'),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await count();
    await expectAlike('fp-fresh');
    expect(await count()).toBe(before + 3);
  });

  // Last: a SIGKILLed Redis comes back empty.
  it('answers 503 store_unavailable alike while Redis is away (the fast path hands the failure to the app)', async () => {
    await t.redis.stop();
    try {
      const away = await expectAlike('fp-fresh');
      expect(away.fast.status).toBe(503);
      expect(away.fast.body.code).toBe('store_unavailable');
      expect(away.fast.headers['retry-after']).toBe('1');
      expect(away.fast.headers['x-content-type-options']).toBe('nosniff');
    } finally {
      await t.redis.startProcess();
    }
    await until(async () =>
      (await fetch(`${t.broker.internalUrl}/readyz`)).status === 200 ? true : undefined,
    );
  });
});
