import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import {
  NOTHING_STORED,
  callbackUrl,
  connectionFootprint,
  onListener,
  startFlow,
} from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * RFC 9700 §4.4 (mix-up): each provider has its own callback path, and a flow started for
 * provider A is only ever finished at A's callback. Its state presented at B's callback is
 * refused before any token endpoint (A's or B's) hears of the code.
 */
describe('provider mix-up via state', () => {
  let other: FakeProvider;
  beforeAll(async () => {
    other = await FakeProvider.start();
  });
  // jobber on the fixture's fake (the honest provider), bonjoro on the other.
  const t = useBrokerOnRedis(() => providerEnv('bonjoro', other.url));
  afterAll(() => other?.close());

  it('gives every provider its own redirect_uri, the same in the authorization and the token request', async () => {
    for (const [id, fake] of [
      ['jobber', t.fake],
      ['bonjoro', other],
    ] as const) {
      const result = await t.broker.connect(id, `acct-uri-${id}`, { returnTo: RETURN_TO });
      expect(result.authorizeUrl.searchParams.get('redirect_uri')).toBe(
        `${t.broker.publicUrl}/callback/${id}`,
      );
      expect(fake.tokenRequests[fake.tokenRequests.length - 1]!.params.redirect_uri).toBe(
        `${t.broker.publicUrl}/callback/${id}`,
      );
    }
  });

  it("refuses provider A's state at provider B's callback: 400, no token request at either, nothing stored", async () => {
    const browser = new TestBrowser();
    const before = { honest: t.fake.tokenRequests.length, other: other.tokenRequests.length };
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-mixup', { return_to: RETURN_TO });

    const mixed = await browser.get(callbackUrl(t.broker, 'bonjoro', { code: 'code-mixup', state }));
    expect(mixed.status).toBe(400);
    expect(mixed.location).toBeNull();
    expect(mixed.body).toContain('We could not match this sign-in');
    expect(t.fake.tokenRequests.length).toBe(before.honest);
    expect(other.tokenRequests.length).toBe(before.other);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-mixup')).toEqual(NOTHING_STORED);
    expect(await connectionFootprint(t.client, 'bonjoro', 'acct-mixup')).toEqual(NOTHING_STORED);
  });

  it('uses the flow up once its state was seen at the wrong callback: the code is not exchanged later at the right one', async () => {
    const browser = new TestBrowser();
    const before = { honest: t.fake.tokenRequests.length, other: other.tokenRequests.length };
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-mixup-then-right', {
      return_to: RETURN_TO,
    });

    expect(
      (await browser.get(callbackUrl(t.broker, 'bonjoro', { code: 'code-mixup-2', state }))).status,
    ).toBe(400);
    const right = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-mixup-2', state }));
    expect(right.status).toBe(400);
    expect(t.fake.tokenRequests.length).toBe(before.honest);
    expect(other.tokenRequests.length).toBe(before.other);
    expect(await connectionFootprint(t.client, 'jobber', 'acct-mixup-then-right')).toEqual(NOTHING_STORED);
  });

  it("refuses A's state at the callback of a provider that is not enabled, or not known", async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(t.broker, browser, 'jobber', 'acct-mixup-unknown', {
      return_to: RETURN_TO,
    });
    const disabled = await browser.get(callbackUrl(t.broker, 'bexio', { code: 'code-mixup-3', state }));
    const unknown = await browser.get(callbackUrl(t.broker, 'acme', { code: 'code-mixup-3', state }));
    expect(disabled.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(t.fake.tokenRequests.filter((r) => r.params.code === 'code-mixup-3')).toHaveLength(0);
    expect(other.tokenRequests.filter((r) => r.params.code === 'code-mixup-3')).toHaveLength(0);
  });

  it("leaves a connect link opened under another provider's /auth path unused, and starts no flow", async () => {
    const browser = new TestBrowser();
    const link = new URL(
      onListener(t.broker, await t.broker.connectLink('jobber', 'acct-link-mixup', { return_to: RETURN_TO })),
    );
    const wrong = await browser.get(`${t.broker.publicUrl}/auth/bonjoro${link.search}`);
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain('This connect link is for another service');
    expect(wrong.setCookies).toEqual([]);

    const right = await browser.get(link.toString());
    expect(right.status).toBe(302);
    expect(new URL(right.location!).origin).toBe(new URL(t.fake.url).origin);
  });
});
