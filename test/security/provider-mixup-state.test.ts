import Redis from 'ioredis';
import { TEST_RETURN_ORIGIN, TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import {
  NOTHING_STORED,
  callbackUrl,
  connectionFootprint,
  onListener,
  startFlow,
} from '../helpers/flow-steps';
import { TestRedis } from '../helpers/redis-server';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * RFC 9700 §4.4 (mix-up): each provider has its own callback path, and a flow started for
 * provider A is only ever finished at A's callback. Its state presented at B's callback is
 * refused before any token endpoint (A's or B's) hears of the code.
 */
describe('provider mix-up via state', () => {
  let redis: TestRedis;
  let client: Redis;
  let honest: FakeProvider;
  let other: FakeProvider;
  let broker: TestBroker;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    honest = await FakeProvider.start();
    other = await FakeProvider.start();
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      ...providerEnv('jobber', honest.url),
      ...providerEnv('bonjoro', other.url),
    });
  });

  afterAll(async () => {
    await broker.close();
    client.disconnect();
    await honest.close();
    await other.close();
    await redis.close();
  });

  it('gives every provider its own redirect_uri, the same in the authorization and the token request', async () => {
    for (const [id, fake] of [
      ['jobber', honest],
      ['bonjoro', other],
    ] as const) {
      const result = await broker.connect(id, `acct-uri-${id}`, { returnTo: RETURN_TO });
      expect(result.authorizeUrl.searchParams.get('redirect_uri')).toBe(`${broker.publicUrl}/callback/${id}`);
      expect(fake.tokenRequests[fake.tokenRequests.length - 1]!.params.redirect_uri).toBe(
        `${broker.publicUrl}/callback/${id}`,
      );
    }
  });

  it("refuses provider A's state at provider B's callback: 400, no token request at either, nothing stored", async () => {
    const browser = new TestBrowser();
    const before = { honest: honest.tokenRequests.length, other: other.tokenRequests.length };
    const { state } = await startFlow(broker, browser, 'jobber', 'acct-mixup', { return_to: RETURN_TO });

    const mixed = await browser.get(callbackUrl(broker, 'bonjoro', { code: 'code-mixup', state }));
    expect(mixed.status).toBe(400);
    expect(mixed.location).toBeNull();
    expect(mixed.body).toContain('We could not match this sign-in');
    expect(honest.tokenRequests.length).toBe(before.honest);
    expect(other.tokenRequests.length).toBe(before.other);
    expect(await connectionFootprint(client, 'jobber', 'acct-mixup')).toEqual(NOTHING_STORED);
    expect(await connectionFootprint(client, 'bonjoro', 'acct-mixup')).toEqual(NOTHING_STORED);
  });

  it('uses the flow up once its state was seen at the wrong callback: the code is not exchanged later at the right one', async () => {
    const browser = new TestBrowser();
    const before = { honest: honest.tokenRequests.length, other: other.tokenRequests.length };
    const { state } = await startFlow(broker, browser, 'jobber', 'acct-mixup-then-right', {
      return_to: RETURN_TO,
    });

    expect((await browser.get(callbackUrl(broker, 'bonjoro', { code: 'code-mixup-2', state }))).status).toBe(
      400,
    );
    const right = await browser.get(callbackUrl(broker, 'jobber', { code: 'code-mixup-2', state }));
    expect(right.status).toBe(400);
    expect(honest.tokenRequests.length).toBe(before.honest);
    expect(other.tokenRequests.length).toBe(before.other);
    expect(await connectionFootprint(client, 'jobber', 'acct-mixup-then-right')).toEqual(NOTHING_STORED);
  });

  it("refuses A's state at the callback of a provider that is not enabled, or not known", async () => {
    const browser = new TestBrowser();
    const { state } = await startFlow(broker, browser, 'jobber', 'acct-mixup-unknown', {
      return_to: RETURN_TO,
    });
    const disabled = await browser.get(callbackUrl(broker, 'bexio', { code: 'code-mixup-3', state }));
    const unknown = await browser.get(callbackUrl(broker, 'acme', { code: 'code-mixup-3', state }));
    expect(disabled.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(honest.tokenRequests.filter((r) => r.params.code === 'code-mixup-3')).toHaveLength(0);
    expect(other.tokenRequests.filter((r) => r.params.code === 'code-mixup-3')).toHaveLength(0);
  });

  it("leaves a connect link opened under another provider's /auth path unused, and starts no flow", async () => {
    const browser = new TestBrowser();
    const link = new URL(
      onListener(broker, await broker.connectLink('jobber', 'acct-link-mixup', { return_to: RETURN_TO })),
    );
    const wrong = await browser.get(`${broker.publicUrl}/auth/bonjoro${link.search}`);
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain('This connect link is for another service');
    expect(wrong.setCookies).toEqual([]);

    const right = await browser.get(link.toString());
    expect(right.status).toBe(302);
    expect(new URL(right.location!).origin).toBe(new URL(honest.url).origin);
  });
});
