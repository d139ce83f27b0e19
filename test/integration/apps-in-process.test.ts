import request from 'supertest';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';

/**
 * The two Express apps driven in process through supertest (no listener of their own), on a real
 * Redis: the same apps the listeners serve, so what holds here holds there, and a failing check
 * points at the app rather than at sockets.
 */
describe('the public and internal apps in process (supertest)', () => {
  const t = useBrokerOnRedis();

  const bearer = `Bearer ${TEST_INTERNAL_KEY}`;

  it('imports, reads and deletes a connection through the internal app', async () => {
    const app = t.broker.broker.internalHandler;
    const put = await request(app)
      .put('/internal/connections/jobber/acct-st')
      .set('authorization', bearer)
      .send({ access_token: 'at-supertest', refresh_token: 'rt-supertest', expires_in: 3600 });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ provider: 'jobber', connection_id: 'acct-st', status: 'active' });

    const token = await request(app)
      .get('/internal/connections/jobber/acct-st/token')
      .set('authorization', bearer);
    expect(token.status).toBe(200);
    expect(token.headers['cache-control']).toBe('no-store');
    expect(token.body).toMatchObject({
      auth_mode: 'oauth2',
      access_token: 'at-supertest',
      token_type: 'Bearer',
    });

    expect(
      (await request(app).delete('/internal/connections/jobber/acct-st').set('authorization', bearer)).status,
    ).toBe(204);
    const gone = await request(app).get('/internal/connections/jobber/acct-st').set('authorization', bearer);
    expect(gone.status).toBe(404);
    expect(gone.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(gone.body.code).toBe('connection_not_found');
  });

  it('answers 401 problem+json without the key on any internal path, and 404 with it on an unknown one', async () => {
    const app = t.broker.broker.internalHandler;
    for (const path of ['/internal/providers', '/internal/nothing-here', '/elsewhere']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.body.code).toBe('unauthorized');
    }
    const unknown = await request(app).get('/internal/nothing-here').set('authorization', bearer);
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('serves the browser pages with a CSP, nosniff and no X-Powered-By, and 404 for internal paths', async () => {
    const app = t.broker.broker.publicApp;
    const health = await request(app).get('/healthz');
    expect(health.status).toBe(200);
    expect(health.headers['x-powered-by']).toBeUndefined();
    expect(health.headers['x-content-type-options']).toBe('nosniff');

    const link = await request(app).get('/auth/jobber?session=not-a-session').redirects(0);
    expect(link.status).toBe(400);
    expect(link.headers['content-type']).toMatch(/^text\/html/);
    expect(link.headers['content-security-policy']).toMatch(/default-src 'none'|default-src 'self'/);
    expect(link.text).not.toContain('not-a-session');

    for (const path of ['/internal/providers', '/readyz', '/metrics']) {
      expect((await request(app).get(path).set('authorization', bearer)).status).toBe(404);
    }
  });
});
