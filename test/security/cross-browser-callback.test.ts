import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import {
  NOTHING_STORED,
  callbackUrl,
  connectionFootprint,
  exchangesOf,
  startFlow,
} from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * RFC 9700 §4.7 (CSRF) and §4.5 (code injection): `state` is bound to the browser that started
 * the flow. A callback carrying a state from another browser's session, or arriving without any
 * session, matches no flow: 400, no token request, nothing stored.
 */
describe('cross-browser callback', () => {
  const t = useBrokerOnRedis();

  it("refuses another browser's state presented with the attacker's own session, and the victim can still finish", async () => {
    const victim = new TestBrowser();
    const attacker = new TestBrowser();
    const victimFlow = await startFlow(t.broker, victim, 'jobber', 'acct-victim', { return_to: RETURN_TO });
    // The attacker has a session of their own, with a live flow in it.
    await startFlow(t.broker, attacker, 'jobber', 'acct-attacker-own', { return_to: RETURN_TO });

    const stolen = await attacker.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-stolen-state', state: victimFlow.state }),
    );
    expect(stolen.status).toBe(400);
    expect(stolen.body).toContain('We could not match this sign-in');
    expect(stolen.location).toBeNull();
    expect(exchangesOf(t.fake.tokenRequests, 'code-stolen-state')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-victim')).toEqual(NOTHING_STORED);

    // The attempt did not burn the victim's flow.
    const own = await victim.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-victim', state: victimFlow.state }),
    );
    expect(own.status).toBe(303);
    expect(new URL(own.location!).searchParams.get('connection_id')).toBe('acct-victim');
  });

  it('refuses a callback without a session cookie and makes no token request', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-no-cookie', {
      return_to: RETURN_TO,
    });
    const bare = new TestBrowser();
    const answer = await bare.get(callbackUrl(t.broker, 'jobber', { code: 'code-no-cookie', state }));
    expect(answer.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-no-cookie')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-no-cookie')).toEqual(NOTHING_STORED);
    // No session is created for a stranger's callback.
    expect(answer.setCookies).toEqual([]);
  });

  it("refuses the attacker's own code and state injected into the victim's browser (login CSRF)", async () => {
    const attacker = new TestBrowser();
    const victim = new TestBrowser();
    const attackerFlow = await startFlow(t.broker, attacker, 'jobber', 'acct-csrf-attacker', {
      return_to: RETURN_TO,
    });
    await startFlow(t.broker, victim, 'jobber', 'acct-csrf-victim', { return_to: RETURN_TO });

    const injected = await victim.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-csrf', state: attackerFlow.state }),
    );
    expect(injected.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-csrf')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-csrf-attacker')).toEqual(NOTHING_STORED);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-csrf-victim')).toEqual(NOTHING_STORED);
  });

  it('refuses a callback whose session cookie was tampered with', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-tampered-cookie', {
      return_to: RETURN_TO,
    });
    const [name, value] = browser.cookieHeader().split('=') as [string, string];
    // Keep the session id, break the signature: express-session must not trust it.
    const decoded = decodeURIComponent(value);
    const forged = `${decoded.slice(0, decoded.lastIndexOf('.') + 1)}${'A'.repeat(43)}`;
    const answer = await new TestBrowser().get(
      callbackUrl(t.broker, 'jobber', { code: 'code-tampered', state }),
      {
        cookie: `${name}=${encodeURIComponent(forged)}`,
      },
    );
    expect(answer.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-tampered')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-tampered-cookie')).toEqual(NOTHING_STORED);
  });

  it('refuses a callback carrying an unsigned session id taken from Redis', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-unsigned-sid', {
      return_to: RETURN_TO,
    });
    const [name, value] = browser.cookieHeader().split('=') as [string, string];
    const sid = decodeURIComponent(value).replace(/^s:/, '').split('.')[0]!;
    expect(await t.client.exists(`ob:sess:${sid}`)).toBe(1);
    const answer = await new TestBrowser().get(
      callbackUrl(t.broker, 'jobber', { code: 'code-unsigned', state }),
      { cookie: `${name}=${sid}` },
    );
    expect(answer.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-unsigned')).toBe(0);
  });
});
