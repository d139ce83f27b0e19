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

/** RFC 9700 §4.7.1 / §2.1: `state` is single use; a replayed authorization response is refused. */
describe('state replay', () => {
  const t = useBrokerOnRedis({}, {}, { second: {} });

  it('answers a callback replayed with the same cookie with a 400 page, and the code reaches the token endpoint once', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-replay', { return_to: RETURN_TO });
    const url = callbackUrl(t.broker, 'jobber', { code: 'code-replay-1', state });

    const first = await browser.get(url);
    expect(first.status).toBe(303);
    expect(new URL(first.location!).searchParams.get('connected')).toBe('jobber');
    const stored = await t.client.hgetall('ob:{jobber:acct-replay}:conn');
    const sealed = await t.client.getBuffer('ob:{jobber:acct-replay}:sealed');
    expect(sealed).toBeTruthy();

    const replay = await browser.get(url);
    expect(replay.status).toBe(400);
    expect(replay.headers.get('content-type')).toMatch(/^text\/html/);
    expect(replay.body).toContain('We could not match this sign-in');
    expect(replay.location).toBeNull();
    expect(exchangesOf(t.fake.tokenRequests, 'code-replay-1')).toBe(1);
    // The replay changed nothing that the first callback stored.
    expect(await t.client.hgetall('ob:{jobber:acct-replay}:conn')).toEqual(stored);
    expect(await t.client.getBuffer('ob:{jobber:acct-replay}:sealed')).toEqual(sealed);
  });

  it('refuses a replay carrying a fresh code for the used state, and makes no token request for it', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-replay-fresh-code', {
      return_to: RETURN_TO,
    });
    expect((await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-fresh-1', state }))).status).toBe(
      303,
    );

    const replay = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-fresh-2', state }));
    expect(replay.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-fresh-2')).toBe(0);
  });

  it('refuses a replay sent to another t.broker process with the same cookie', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-replay-other-process', {
      return_to: RETURN_TO,
    });
    expect((await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-other-1', state }))).status).toBe(
      303,
    );

    const replay = await browser.get(callbackUrl(t.second, 'jobber', { code: 'code-other-1', state }));
    expect(replay.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-other-1')).toBe(1);
  });

  it('lets exactly one of two simultaneous callbacks with the same state through, across two processes', async () => {
    for (let round = 0; round < 5; round++) {
      const browser = new TestBrowser();
      const { state } = await startFlow(t.broker, browser, 'jobber', `acct-race-${round}`, {
        return_to: RETURN_TO,
      });
      const code = `code-race-${round}`;
      const answers = await Promise.all([
        browser.get(callbackUrl(t.broker, 'jobber', { code, state })),
        browser.get(callbackUrl(t.second, 'jobber', { code, state })),
        browser.get(callbackUrl(t.broker, 'jobber', { code, state })),
      ]);
      expect(answers.map((a) => a.status).sort()).toEqual([303, 400, 400]);
      expect(exchangesOf(t.fake.tokenRequests, code)).toBe(1);
    }
  });

  it('uses the state up on the error= path: a later callback with a code for it is refused and stores nothing', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-denied-then-code', {
      return_to: RETURN_TO,
    });

    const denied = await browser.get(callbackUrl(t.broker, 'jobber', { error: 'access_denied', state }));
    expect(denied.status).toBe(303);
    expect(new URL(denied.location!).searchParams.get('error')).toBe('access_denied');

    const replay = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-after-denial', state }));
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('We could not match this sign-in');
    expect(exchangesOf(t.fake.tokenRequests, 'code-after-denial')).toBe(0);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-denied-then-code')).toEqual(NOTHING_STORED);

    // The error answer replayed is refused as well, rather than redirected a t.second time.
    const deniedAgain = await browser.get(callbackUrl(t.broker, 'jobber', { error: 'access_denied', state }));
    expect(deniedAgain.status).toBe(400);
  });

  it('uses the state up when the code exchange fails: a retry of the same callback makes no t.second token request', async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-failed-exchange', {
      return_to: RETURN_TO,
    });
    t.fake.failNext(1, 400, { error: 'invalid_grant' });
    const failed = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-failed-exchange', state }),
    );
    expect(failed.status).toBe(303);
    expect(new URL(failed.location!).searchParams.get('error')).toBe('token_exchange_failed');

    const retry = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-failed-exchange', state }));
    expect(retry.status).toBe(400);
    expect(exchangesOf(t.fake.tokenRequests, 'code-failed-exchange')).toBe(1);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-failed-exchange')).toEqual(NOTHING_STORED);
  });

  it("keeps a browser's other flows usable after one of them is replayed", async () => {
    const browser = new TestBrowser();
    const a = await startFlow(t.broker, browser, 'jobber', 'acct-multi-a', { return_to: RETURN_TO });
    const b = await startFlow(t.broker, browser, 'jobber', 'acct-multi-b', { return_to: RETURN_TO });
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-multi-a', state: a.state }))).status,
    ).toBe(303);
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-multi-a', state: a.state }))).status,
    ).toBe(400);

    const other = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-multi-b', state: b.state }),
    );
    expect(other.status).toBe(303);
    expect(new URL(other.location!).searchParams.get('connection_id')).toBe('acct-multi-b');
  });
});
