import { randomBytes } from 'node:crypto';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import {
  NOTHING_STORED,
  callbackUrl,
  connectionFootprint,
  exchangesOf,
  onListener,
  startFlow,
} from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * RFC 9700 §4.7.1: a `state` the broker did not issue to this browser (guessed, missing, malformed,
 * expired, or a value that is not an OAuth flow's) matches nothing. Each answers 400 with a page,
 * makes no token request and stores nothing, while the browser's real flow stays usable.
 */
describe('forged state', () => {
  const t = useBrokerOnRedis((fakeUrl) => ({
    PROCESS_STREET_AUTH_MODE: 'api_key',
    PROCESS_STREET_API_KEY_VERIFY_URL: `${fakeUrl}/verify`,
  }));

  afterAll(() => {
    jest.restoreAllMocks();
  });

  it('issues states of at least 128 bits, a new one for every flow', async () => {
    const browser = new TestBrowser();
    const states = new Set<string>();
    for (let i = 0; i < 5; i++)
      states.add((await startFlow(t.broker, browser, 'jobber', `acct-entropy-${i}`)).state);
    expect(states.size).toBe(5);
    for (const state of states) {
      expect(state).toMatch(/^[A-Za-z0-9_-]+$/);
      // base64url: 6 bits a character, so 22 characters carry at least 128 bits.
      expect(state.length).toBeGreaterThanOrEqual(22);
    }
  });

  const forgeries: Array<[string, (real: string) => Record<string, string>]> = [
    ['a random state of the right shape', () => ({ state: randomBytes(32).toString('base64url') })],
    [
      'the real state with one character changed',
      (real) => ({ state: `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}` }),
    ],
    ['the real state with a suffix', (real) => ({ state: `${real}x` })],
    ['the real state truncated', (real) => ({ state: real.slice(0, 20) })],
    ['no state at all', () => ({})],
    ['an empty state', () => ({ state: '' })],
    ['a prototype property name (__proto__)', () => ({ state: '__proto__' })],
    ['a prototype property name (constructor)', () => ({ state: 'constructor' })],
    ['a prototype property name (hasOwnProperty)', () => ({ state: 'hasOwnProperty' })],
    ['a very long state', () => ({ state: 'x'.repeat(8000) })],
  ];

  it.each(forgeries)(
    'refuses %s with a 400 page, no token request and nothing stored',
    async (_label, forge) => {
      const browser = new TestBrowser();
      const connectionId = `acct-forged-${Math.random().toString(36).slice(2, 10)}`;
      const real = await startFlow(t.broker, browser, 'jobber', connectionId, { return_to: RETURN_TO });
      const code = `code-${connectionId}`;

      const answer = await browser.get(callbackUrl(t.broker, 'jobber', { code, ...forge(real.state) }));
      expect(answer.status).toBe(400);
      expect(answer.headers.get('content-type')).toMatch(/^text\/html/);
      expect(answer.location).toBeNull();
      expect(exchangesOf(t.fake.tokenRequests, code)).toBe(0);
      expect(await connectionFootprint(t.client, 'jobber', connectionId)).toEqual(NOTHING_STORED);

      // The forgery does not disturb the browser's real flow.
      const genuine = await browser.get(
        callbackUrl(t.broker, 'jobber', { code: `${code}-real`, state: real.state }),
      );
      expect(genuine.status).toBe(303);
    },
  );

  it('refuses a state given twice (an array where a string belongs)', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-state-twice', {
      return_to: RETURN_TO,
    });
    const answer = await browser.get(
      `${t.broker.publicUrl}/callback/jobber?code=code-twice&state=${state}&state=${state}`,
    );
    expect(answer.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-twice')).toBe(0);
  });

  it("refuses an API-key form's flow id presented as an OAuth state", async () => {
    const browser = new TestBrowser();
    const link = await t.broker.connectLink('process-street', 'acct-form-as-state', { return_to: RETURN_TO });
    const form = await browser.get(onListener(t.broker, link));
    expect(form.status).toBe(200);
    const flowId = /name="flow" value="([^"]+)"/.exec(form.body)![1]!;

    for (const provider of ['process-street', 'jobber']) {
      const answer = await browser.get(
        callbackUrl(t.broker, provider, { code: 'code-form-as-state', state: flowId }),
      );
      expect(answer.status).toBe(400);
    }
    expect(exchangesOf(t.fake.tokenRequests, 'code-form-as-state')).toBe(0);
    expect(await connectionFootprint(t.client, 'process-street', 'acct-form-as-state')).toEqual(
      NOTHING_STORED,
    );
  });

  it('refuses a state whose flow is older than 10 minutes, and makes no token request', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-expired-state', {
      return_to: RETURN_TO,
    });
    const realNow = Date.now.bind(Date);
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 11 * 60 * 1000);
    try {
      const answer = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-expired', state }));
      expect(answer.status).toBe(400);
      expect(answer.body).toContain('We could not match this sign-in');
    } finally {
      clock.mockRestore();
    }
    expect(exchangesOf(t.fake.tokenRequests, 'code-expired')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-expired-state')).toEqual(NOTHING_STORED);
  });
});
