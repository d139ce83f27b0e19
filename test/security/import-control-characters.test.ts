import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { useProvidersFiles } from '../helpers/providers-file';

/**
 * Imported credentials end up in request headers (the token API's ready-made `headers`, the
 * proxy): a CR/LF would split a header, any control character or space corrupts it. `PUT` refuses
 * them as the API-key form does, and stores nothing.
 */
describe('PUT import refuses control characters and spaces in credentials', () => {
  const files = useProvidersFiles('import-chars');
  const t = useBrokerOnRedis(() => ({
    PROVIDERS_FILE: files.write([{ id: 'keyed', auth_mode: 'api_key', api_key: { header: 'X-API-KEY' } }]),
  }));
  let n = 0;

  const BAD = [
    ['CR LF', 'abc\r\nX-Injected: 1'],
    ['LF', 'abc\ndef'],
    ['NUL', 'abc\u0000def'],
    ['TAB', 'abc\tdef'],
    ['DEL', 'abc\u007fdef'],
    ['C1 control', 'abc\u0085def'],
    ['space', 'abc def'],
    ['leading space', ' abcdef'],
    ['no-break space', 'abc\u00a0def'],
  ];

  async function put(provider: string, id: string, body: Record<string, unknown>) {
    return t.broker.api(`/internal/connections/${provider}/${id}`, { method: 'PUT', body });
  }

  it.each(BAD)(
    'refuses an api_key with a %s with 400 invalid_request and stores nothing',
    async (_what, key) => {
      const id = `imp-key-${++n}`;
      const res = await put('keyed', id, { api_key: key });
      expect(res.status).toBe(400);
      expect((res.body as { code: string }).code).toBe('invalid_request');
      expect(JSON.stringify(res.body)).not.toContain(key);
      expect((await t.broker.api(`/internal/connections/keyed/${id}`)).status).toBe(404);
    },
  );

  it.each(['access_token', 'refresh_token', 'token_type'])(
    'refuses a %s holding a control character or a space, and stores nothing',
    async (field) => {
      for (const [, bad] of BAD) {
        const id = `imp-tok-${++n}`;
        const body: Record<string, unknown> = { access_token: 'good-access', refresh_token: 'good-refresh' };
        body[field] = bad;
        const res = await put('jobber', id, body);
        expect({ field, bad, status: res.status }).toEqual({ field, bad, status: 400 });
        expect((res.body as { code: string }).code).toBe('invalid_request');
        expect((await t.broker.api(`/internal/connections/jobber/${id}`)).status).toBe(404);
      }
    },
  );

  it('still imports printable credentials', async () => {
    expect((await put('keyed', `imp-ok-${++n}`, { api_key: 'k3y!#$%&*+-./:;<=>?@[]^_`{|}~' })).status).toBe(
      201,
    );
    expect(
      (
        await put('jobber', `imp-ok-${++n}`, {
          access_token: 'eyJhbGciOi.JIUzI1-NiJ9_~+/=',
          refresh_token: 'r1',
          token_type: 'Bearer',
        })
      ).status,
    ).toBe(201);
  });
});
