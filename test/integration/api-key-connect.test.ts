import { TestBrowser } from '../helpers/browser';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { hiddenField, useProvidersFiles } from '../helpers/providers-file';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations?tab=keys`;

interface KeyForm {
  browser: TestBrowser;
  status: number;
  body: string;
  action: string;
  flow: string;
  csrf: string;
}

describe('connecting an api_key provider through its form', () => {
  const files = useProvidersFiles('api-key-connect');
  const t = useBrokerOnRedis((fakeUrl) => ({
    PROVIDERS_FILE: files.write([
      {
        id: 'keyed',
        display_name: 'Keyed',
        auth_mode: 'api_key',
        api_key: { header: 'X-API-KEY', verify_url: `${fakeUrl}/verify` },
      },
      {
        id: 'keyed-bearer',
        auth_mode: 'api_key',
        api_key: {
          header: 'Authorization',
          prefix: 'Bearer ',
          verify_url: `${fakeUrl}/verify`,
          verify_method: 'POST',
        },
      },
    ]),
    // The fake's slow key answers after 5 s: a short provider timeout makes it a timeout.
    PROVIDER_TIMEOUT: '1',
    // Built-ins switched to keys: one with the catalogue's api_key block, one without.
    PROCESS_STREET_AUTH_MODE: 'api_key',
    PROCESS_STREET_API_KEY_VERIFY_URL: `${fakeUrl}/verify`,
    BONJORO_AUTH_MODE: 'api_key',
  }));
  let counter = 0;
  const nextId = (prefix: string) => `${prefix}-${++counter}`;

  async function openForm(
    provider: string,
    connectionId: string,
    browser = new TestBrowser(),
  ): Promise<KeyForm> {
    const link = await t.broker.connectLink(provider, connectionId, { return_to: RETURN_TO });
    const page = await browser.get(link);
    const action = /<form method="post" action="([^"]+)"/.exec(page.body)?.[1] ?? '';
    return {
      browser,
      status: page.status,
      body: page.body,
      action,
      flow: hiddenField(page.body, 'flow'),
      csrf: hiddenField(page.body, 'csrf'),
    };
  }

  function submit(form: KeyForm, fields: Record<string, string>, browser = form.browser) {
    return browser.postForm(`${t.broker.publicUrl}${form.action}`, fields);
  }

  async function stored(provider: string, connectionId: string): Promise<number> {
    return (await t.broker.api(`/internal/connections/${provider}/${connectionId}`)).status;
  }

  const verifications = () => t.fake.requests.filter((r) => r.path === '/verify');

  it('answers the connect link with a 200 form bound to the session by a hidden anti-CSRF token', async () => {
    const form = await openForm('keyed', nextId('k'));
    expect(form.status).toBe(200);
    expect(form.action).toBe('/auth/keyed');
    expect(form.csrf.length).toBeGreaterThanOrEqual(32);
    expect(form.browser.cookieHeader()).not.toBe('');
    expect(form.body).toContain('<label for="api_key">');
    expect(form.body).toMatch(/<input type="password" id="api_key" name="api_key" required/);
    // Self-contained: nothing loaded from anywhere else.
    expect(form.body).not.toMatch(/<script|<link|<img|src=|https?:\/\//);
  });

  it('refuses a submission without the anti-CSRF token with 400 and stores nothing', async () => {
    const id = nextId('k');
    const form = await openForm('keyed', id);
    const before = verifications().length;
    const res = await submit(form, { flow: form.flow, api_key: 'good-key-nocsrf' });
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('good-key-nocsrf');
    expect(verifications().length).toBe(before);
    expect(await stored('keyed', id)).toBe(404);
  });

  it('refuses a wrong anti-CSRF token with 400 and stores nothing', async () => {
    const id = nextId('k');
    const form = await openForm('keyed', id);
    const res = await submit(form, {
      flow: form.flow,
      csrf: `${form.csrf.slice(0, -1)}x`,
      api_key: 'good-key-wrongcsrf',
    });
    expect(res.status).toBe(400);
    expect(await stored('keyed', id)).toBe(404);
  });

  it('refuses the same form sent from another browser with 400 and stores nothing', async () => {
    const id = nextId('k');
    const form = await openForm('keyed', id);
    // A browser without a session, and one with a session of its own.
    const stranger = new TestBrowser();
    expect(
      (await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-a' }, stranger)).status,
    ).toBe(400);
    const other = await openForm('keyed', nextId('k'));
    expect(
      (await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-b' }, other.browser)).status,
    ).toBe(400);
    expect(await stored('keyed', id)).toBe(404);
    // The rightful browser can still finish.
    expect((await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-c' })).status).toBe(
      303,
    );
  });

  it("refuses a form posted under another provider's path with 400 and stores nothing", async () => {
    const id = nextId('k');
    const form = await openForm('keyed', id);
    const res = await form.browser.postForm(`${t.broker.publicUrl}/auth/keyed-bearer`, {
      flow: form.flow,
      csrf: form.csrf,
      api_key: 'good-key-x',
    });
    expect(res.status).toBe(400);
    expect(await stored('keyed', id)).toBe(404);
    expect(await stored('keyed-bearer', id)).toBe(404);
  });

  it('shows the form again with 400 and a message when the provider refuses the key, keeping the flow for another try', async () => {
    const id = nextId('k');
    const form = await openForm('keyed', id);
    const refused = await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'bad-key-1' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('role="alert"');
    expect(refused.body).toContain('did not accept this key');
    expect(refused.body).not.toContain('bad-key-1');
    expect(hiddenField(refused.body, 'flow')).toBe(form.flow);
    expect(hiddenField(refused.body, 'csrf')).toBe(form.csrf);
    expect(await stored('keyed', id)).toBe(404);

    const accepted = await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-retry' });
    expect(accepted.status).toBe(303);
    expect(await stored('keyed', id)).toBe(200);
  });

  it.each([
    ['fails', 'broken-key-1'],
    ['times out', 'slow-key-1'],
  ])(
    'answers 502 with the form again when the key check %s, and lets the user try again',
    async (_how, key) => {
      const id = nextId('k');
      const form = await openForm('keyed', id);
      const res = await submit(form, { flow: form.flow, csrf: form.csrf, api_key: key });
      expect(res.status).toBe(502);
      expect(res.body).toContain('role="alert"');
      expect(res.body).toContain('could not be reached');
      expect(hiddenField(res.body, 'csrf')).toBe(form.csrf);
      expect(await stored('keyed', id)).toBe(404);
      expect(
        (await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-after' })).status,
      ).toBe(303);
    },
  );

  it('stores an accepted key encrypted, answers 303 to return_to, and uses the flow up', async () => {
    const id = nextId('k');
    const key = `good-key-${'x'.repeat(24)}-${id}`;
    const form = await openForm('keyed', id);
    const before = verifications().length;
    const res = await submit(form, { flow: form.flow, csrf: form.csrf, api_key: key });
    expect(res.status).toBe(303);
    const back = new URL(res.location!);
    expect(`${back.origin}${back.pathname}`).toBe(`${TEST_RETURN_ORIGIN}/integrations`);
    expect(back.searchParams.get('tab')).toBe('keys');
    expect(back.searchParams.get('connected')).toBe('keyed');
    expect(back.searchParams.get('connection_id')).toBe(id);

    // One check, with the key in the declared header.
    expect(verifications().length).toBe(before + 1);
    const check = verifications()[before]!;
    expect(check.method).toBe('GET');
    expect(check.headers['x-api-key']).toBe(key);

    const token = await t.broker.api(`/internal/connections/keyed/${id}/token`);
    expect(token.status).toBe(200);
    expect(token.body).toEqual({
      auth_mode: 'api_key',
      api_key: key,
      headers: { 'X-API-KEY': key },
      expires_at: null,
      scopes: [],
    });
    const meta = await t.broker.api(`/internal/connections/keyed/${id}`);
    expect(meta.body).toMatchObject({
      auth_mode: 'api_key',
      status: 'active',
      expires_at: null,
      next_refresh_at: null,
      scopes: [],
    });

    // Sealed at rest: no Redis value holds the key in clear.
    const client = t.redis.client();
    try {
      for (const redisKey of await client.keys('*')) {
        const type = await client.type(redisKey);
        const values =
          type === 'hash'
            ? Object.values(await client.hgetall(redisKey))
            : type === 'string'
              ? [await client.get(redisKey)]
              : [];
        for (const value of values) expect(String(value)).not.toContain(key);
      }
    } finally {
      client.disconnect();
    }

    // The flow is used up.
    expect((await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-again' })).status).toBe(
      400,
    );
    expect((await t.broker.api(`/internal/connections/keyed/${id}/token`)).body.api_key).toBe(key);
  });

  it('sends the key with the declared prefix and method when checking it', async () => {
    const id = nextId('kb');
    const form = await openForm('keyed-bearer', id);
    const before = verifications().length;
    expect(
      (await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-bearer' })).status,
    ).toBe(303);
    const check = verifications()[before]!;
    expect(check.method).toBe('POST');
    expect(check.headers.authorization).toBe('Bearer good-key-bearer');
    const token = await t.broker.api(`/internal/connections/keyed-bearer/${id}/token`);
    expect(token.body.headers).toEqual({ Authorization: 'Bearer good-key-bearer' });
  });

  it('switches a built-in to keys with <PROVIDER>_AUTH_MODE=api_key, sending its declared header', async () => {
    const id = nextId('ps');
    const form = await openForm('process-street', id);
    expect(form.status).toBe(200);
    expect(form.action).toBe('/auth/process-street');
    const before = verifications().length;
    expect((await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'good-key-ps' })).status).toBe(
      303,
    );
    expect(verifications()[before]!.headers['x-api-key']).toBe('good-key-ps');
    const token = await t.broker.api(`/internal/connections/process-street/${id}/token`);
    expect(token.body).toEqual({
      auth_mode: 'api_key',
      api_key: 'good-key-ps',
      headers: { 'X-API-KEY': 'good-key-ps' },
      expires_at: null,
      scopes: [],
    });
  });

  it('sends the key as Authorization: Bearer for a provider switched without an api_key block, unchecked', async () => {
    const id = nextId('bj');
    const form = await openForm('bonjoro', id);
    const before = verifications().length;
    expect(
      (await submit(form, { flow: form.flow, csrf: form.csrf, api_key: 'any-key-bonjoro' })).status,
    ).toBe(303);
    expect(verifications().length).toBe(before);
    const token = await t.broker.api(`/internal/connections/bonjoro/${id}/token`);
    expect(token.body).toEqual({
      auth_mode: 'api_key',
      api_key: 'any-key-bonjoro',
      headers: { Authorization: 'Bearer any-key-bonjoro' },
      expires_at: null,
      scopes: [],
    });
  });

  it('lists a switched built-in as api_key without a redirect URI', async () => {
    const res = await t.broker.api('/internal/providers');
    const ps = (res.body.providers as Array<Record<string, unknown>>).find((p) => p.id === 'process-street');
    expect(ps).toMatchObject({ auth_mode: 'api_key', redirect_uri: null, api_key_header: 'X-API-KEY' });
  });

  it('imports a key with PUT {"api_key"}, 201 then 200, and refuses OAuth fields for it', async () => {
    const id = nextId('imp');
    const created = await t.broker.api(`/internal/connections/keyed/${id}`, {
      method: 'PUT',
      body: { api_key: 'imported-key-1' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      provider: 'keyed',
      connection_id: id,
      auth_mode: 'api_key',
      status: 'active',
    });
    expect(JSON.stringify(created.body)).not.toContain('imported-key-1');
    const replaced = await t.broker.api(`/internal/connections/keyed/${id}`, {
      method: 'PUT',
      body: { api_key: 'imported-key-2' },
    });
    expect(replaced.status).toBe(200);
    expect((await t.broker.api(`/internal/connections/keyed/${id}/token`)).body.api_key).toBe(
      'imported-key-2',
    );

    const wrong = await t.broker.api(`/internal/connections/keyed/${id}`, {
      method: 'PUT',
      body: { access_token: 'at' },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('invalid_request');
    expect(
      (await t.broker.api(`/internal/connections/keyed/${id}`, { method: 'PUT', body: {} })).status,
    ).toBe(400);
  });

  it('ignores force_refresh for a key and calls nothing', async () => {
    const id = nextId('imp');
    await t.broker.api(`/internal/connections/keyed/${id}`, {
      method: 'PUT',
      body: { api_key: 'forced-key' },
    });
    const requestsBefore = t.fake.requests.length;
    const res = await t.broker.api(
      `/internal/connections/keyed/${id}/token?force_refresh=true&min_validity=86400`,
    );
    expect(res.status).toBe(200);
    expect(res.body.api_key).toBe('forced-key');
    expect(t.fake.requests.length).toBe(requestsBefore);
  });

  it('deletes a key connection without revoking anything', async () => {
    const id = nextId('del');
    await t.broker.api(`/internal/connections/process-street/${id}`, {
      method: 'PUT',
      body: { api_key: 'delete-me' },
    });
    const requestsBefore = t.fake.requests.length;
    expect(
      (await t.broker.api(`/internal/connections/process-street/${id}`, { method: 'DELETE' })).status,
    ).toBe(204);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.fake.requests.length).toBe(requestsBefore);
    expect(t.fake.revocations).toHaveLength(0);
    expect(await stored('process-street', id)).toBe(404);
  });
});
