import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import {
  NOTHING_STORED,
  callbackUrl,
  connectionFootprint,
  exchangesOf,
  startFlow,
} from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const ISSUER = 'https://issuer.example/realms/a';
const BEXIO_CATALOGUE_ISSUER = 'https://auth.bexio.com/realms/bexio';

/**
 * RFC 9207 (mix-up defence): for a provider that declares an issuer, the authorization response,
 * success or error, must carry `iss` equal to it byte for byte; anything else is refused with
 * error=invalid_issuer before the response is believed, with no token request and nothing stored.
 */
describe('provider mix-up via iss', () => {
  const extra: TestBroker[] = [];
  // Declared before the fixture: Jest runs afterAll hooks in declaration order, so these brokers
  // close while the Redis under them is still up.
  afterAll(async () => {
    for (const b of extra) await b.close();
  });
  const t = useBrokerOnRedis({ JOBBER_ISSUER: ISSUER });

  /** Another broker on the same Redis, under its own key prefix, for a variant of the configuration. */
  async function variant(env: Record<string, string>): Promise<{ broker: TestBroker; prefix: string }> {
    const prefix = `ob${extra.length + 1}:`;
    const started = await startTestBroker({ REDIS_URL: t.redis.url, REDIS_KEY_PREFIX: prefix, ...env });
    extra.push(started);
    return { broker: started, prefix };
  }

  /** Starts a flow, answers its callback with `query` (state added), reports what happened. */
  async function answer(
    on: TestBroker,
    provider: string,
    connectionId: string,
    query: Record<string, string>,
    returnTo: string | null = RETURN_TO,
  ) {
    const browser = new TestBrowser();
    const { state } = await startFlow(
      on,
      browser,
      provider,
      connectionId,
      returnTo ? { return_to: returnTo } : {},
    );
    const response = await browser.get(callbackUrl(on, provider, { ...query, state }));
    return {
      browser,
      state,
      response,
      error: response.location ? new URL(response.location).searchParams.get('error') : null,
    };
  }

  it('accepts a callback whose iss equals the declared issuer', async () => {
    const { response } = await answer(t.broker, 'jobber', 'acct-iss-ok', {
      code: 'code-iss-ok',
      iss: ISSUER,
    });
    expect(response.status).toBe(303);
    expect(new URL(response.location!).searchParams.get('connected')).toBe('jobber');
    expect(exchangesOf(t.fake.tokenRequests, 'code-iss-ok')).toBe(1);
  });

  const refused: Array<[string, Record<string, string>]> = [
    ['no iss', {}],
    ["another provider's issuer", { iss: 'https://evil.example' }],
    ['the issuer with a trailing slash', { iss: `${ISSUER}/` }],
    ['the issuer in upper case', { iss: ISSUER.toUpperCase() }],
    ['the issuer with its host in upper case', { iss: 'https://ISSUER.example/realms/a' }],
    ['the issuer percent-encoded', { iss: 'https://issuer.example/realms/%61' }],
    ['the issuer with a default port', { iss: 'https://issuer.example:443/realms/a' }],
    ['the issuer with a space around it', { iss: ` ${ISSUER}` }],
    ['an empty iss', { iss: '' }],
  ];

  it.each(refused)(
    'refuses a code with %s: error=invalid_issuer, no token request, nothing stored',
    async (_label, query) => {
      const id = `acct-iss-${Math.random().toString(36).slice(2, 10)}`;
      const { error, response } = await answer(t.broker, 'jobber', id, { code: `code-${id}`, ...query });
      expect(response.status).toBe(303);
      expect(error).toBe('invalid_issuer');
      expect(exchangesOf(t.fake.tokenRequests, `code-${id}`)).toBe(0);
      expect(await connectionFootprint(t.client, 'jobber', id)).toEqual(NOTHING_STORED);
    },
  );

  it('refuses iss given twice, even when both equal the issuer', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-iss-twice', {
      return_to: RETURN_TO,
    });
    const iss = encodeURIComponent(ISSUER);
    const response = await browser.get(
      `${t.broker.publicUrl}/callback/jobber?code=code-iss-twice&state=${state}&iss=${iss}&iss=${iss}`,
    );
    expect(new URL(response.location!).searchParams.get('error')).toBe('invalid_issuer');
    expect(exchangesOf(t.fake.tokenRequests, 'code-iss-twice')).toBe(0);
  });

  it('checks iss on error responses too, before the error is believed', async () => {
    const wrong = await answer(t.broker, 'jobber', 'acct-iss-error-wrong', {
      error: 'access_denied',
      iss: 'https://evil.example',
    });
    expect(wrong.error).toBe('invalid_issuer');
    const missing = await answer(t.broker, 'jobber', 'acct-iss-error-missing', { error: 'access_denied' });
    expect(missing.error).toBe('invalid_issuer');
    const right = await answer(t.broker, 'jobber', 'acct-iss-error-right', {
      error: 'access_denied',
      iss: ISSUER,
    });
    expect(right.error).toBe('access_denied');
    for (const id of ['acct-iss-error-wrong', 'acct-iss-error-missing', 'acct-iss-error-right']) {
      expect(await connectionFootprint(t.client, 'jobber', id)).toEqual(NOTHING_STORED);
    }
  });

  it('uses the flow up on invalid_issuer: the same state with the right iss afterwards is refused', async () => {
    const { browser, state } = await answer(t.broker, 'jobber', 'acct-iss-then-right', {
      code: 'code-iss-then-right',
      iss: 'https://evil.example',
    });
    const retry = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-iss-then-right', state, iss: ISSUER }),
    );
    expect(retry.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-iss-then-right')).toBe(0);
  });

  it('shows a 400 page saying so when the flow has no return_to', async () => {
    const { response } = await answer(
      t.broker,
      'jobber',
      'acct-iss-page',
      { code: 'code-iss-page', iss: 'https://evil.example' },
      null,
    );
    expect(response.status).toBe(400);
    expect(response.body).toContain('invalid_issuer');
    expect(exchangesOf(t.fake.tokenRequests, 'code-iss-page')).toBe(0);
  });

  it('ignores iss for a provider without an issuer', async () => {
    const { broker: plain } = await variant(providerEnv('jobber', t.fake.url));
    const { response } = await answer(plain, 'jobber', 'acct-no-issuer', {
      code: 'code-no-issuer',
      iss: 'https://whatever.example',
    });
    expect(response.status).toBe(303);
    expect(new URL(response.location!).searchParams.get('connected')).toBe('jobber');
  });

  it('an empty <PROVIDER>_ISSUER turns the check off, also for a catalogue issuer', async () => {
    // bexio's catalogue entry declares an issuer; its authorization endpoint stays the catalogue's.
    const env = {
      BEXIO_CLIENT_ID: 'bexio-client',
      BEXIO_CLIENT_SECRET: 'bexio-secret',
      BEXIO_TOKEN_URL: `${t.fake.url}/token`,
    };
    const { broker: checked, prefix: checkedPrefix } = await variant(env);
    expect(checked.broker.registry.get('bexio')!.issuer).toBe(BEXIO_CATALOGUE_ISSUER);
    const missing = await answer(checked, 'bexio', 'acct-bexio-missing', { code: 'code-bexio-missing' });
    expect(missing.error).toBe('invalid_issuer');
    expect(await connectionFootprint(t.client, 'bexio', 'acct-bexio-missing', checkedPrefix)).toEqual(
      NOTHING_STORED,
    );
    const right = await answer(checked, 'bexio', 'acct-bexio-right', {
      code: 'code-bexio-right',
      iss: BEXIO_CATALOGUE_ISSUER,
    });
    expect(right.response.status).toBe(303);
    expect(right.error).toBeNull();

    const { broker: off } = await variant({ ...env, BEXIO_ISSUER: '' });
    expect(off.broker.registry.get('bexio')!.issuer).toBeUndefined();
    const unchecked = await answer(off, 'bexio', 'acct-bexio-off', { code: 'code-bexio-off' });
    expect(unchecked.response.status).toBe(303);
    expect(unchecked.error).toBeNull();
    expect(exchangesOf(t.fake.tokenRequests, 'code-bexio-off')).toBe(1);
  });

  it('overriding <PROVIDER>_AUTHORIZATION_URL without <PROVIDER>_ISSUER turns the catalogue issuer off; with it, the given issuer applies', async () => {
    const { broker: moved } = await variant(providerEnv('bexio', t.fake.url));
    expect(moved.broker.registry.get('bexio')!.issuer).toBeUndefined();
    const unchecked = await answer(moved, 'bexio', 'acct-bexio-moved', { code: 'code-bexio-moved' });
    expect(unchecked.response.status).toBe(303);
    expect(unchecked.error).toBeNull();

    const { broker: movedWithIssuer } = await variant(
      providerEnv('bexio', t.fake.url, { BEXIO_ISSUER: ISSUER }),
    );
    const old = await answer(movedWithIssuer, 'bexio', 'acct-bexio-old-iss', {
      code: 'code-bexio-old-iss',
      iss: BEXIO_CATALOGUE_ISSUER,
    });
    expect(old.error).toBe('invalid_issuer');
    expect(exchangesOf(t.fake.tokenRequests, 'code-bexio-old-iss')).toBe(0);
    const given = await answer(movedWithIssuer, 'bexio', 'acct-bexio-new-iss', {
      code: 'code-bexio-new-iss',
      iss: ISSUER,
    });
    expect(given.error).toBeNull();
    expect(given.response.status).toBe(303);
  });

  it('completes the whole journey against a provider that sends iss itself', async () => {
    const issuing = await FakeProvider.start({ issuer: ISSUER });
    try {
      const { broker: b } = await variant(providerEnv('jobber', issuing.url, { JOBBER_ISSUER: ISSUER }));
      const browser = new TestBrowser();
      const { authorizeUrl } = await startFlow(b, browser, 'jobber', 'acct-issuing', {
        return_to: RETURN_TO,
      });
      // The fake approves at once and sends the browser back with code, state and iss.
      const approved = await fetch(authorizeUrl, { redirect: 'manual' });
      const back = new URL(approved.headers.get('location')!);
      expect(back.searchParams.get('iss')).toBe(ISSUER);
      const response = await browser.get(`${b.publicUrl}${back.pathname}${back.search}`);
      expect(response.status).toBe(303);
      expect(issuing.tokenRequests).toHaveLength(1);
    } finally {
      await issuing.close();
    }
  });
});
