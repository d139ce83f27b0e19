import { TEST_RETURN_ORIGIN, TestBroker, providerEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;

/**
 * Several flows may be under way in one browser, started at the same moment too (two tabs opened
 * together): every one of them must complete, whichever response's cookie the browser kept.
 */
describe('flows started at the same moment in one browser', () => {
  // A second process on the same Redis: the two tabs may land on different copies.
  const env = (fakeUrl: string) => providerEnv('bexio', fakeUrl);
  const t = useBrokerOnRedis(env, {}, { second: env });
  let n = 0;

  /** Opens `count` connect links in `browser` at once (alternating processes); answers their states. */
  async function openTogether(
    browser: TestBrowser,
    count: number,
  ): Promise<Array<{ id: string; state: string; broker: TestBroker; provider: string }>> {
    const flows = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const broker = i % 2 === 0 ? t.broker : t.second;
        const provider = i % 2 === 0 ? 'jobber' : 'bexio';
        const id = `acct-tab-${++n}`;
        const link = await broker.connectLink(provider, id, { return_to: RETURN_TO });
        return { id, link, broker, provider };
      }),
    );
    const answers = await Promise.all(flows.map((f) => browser.get(onListener(f.broker, f.link))));
    return flows.map((f, i) => {
      expect(answers[i]!.status).toBe(302);
      return { ...f, state: new URL(answers[i]!.location!).searchParams.get('state')! };
    });
  }

  async function finishAll(
    browser: TestBrowser,
    flows: Array<{ id: string; state: string; broker: TestBroker; provider: string }>,
  ): Promise<number[]> {
    const statuses: number[] = [];
    for (const f of flows) {
      const done = await browser.get(
        callbackUrl(f.broker, f.provider, { code: `code-${f.id}`, state: f.state }),
      );
      statuses.push(done.status);
      if (done.status === 303) expect(new URL(done.location!).searchParams.get('connection_id')).toBe(f.id);
    }
    return statuses;
  }

  it.each([1, 2, 3, 4, 5])(
    'completes two tabs opened together in a browser that has a flow under way (round %d)',
    async () => {
      const browser = new TestBrowser();
      const first = await startFlow(t.broker, browser, 'jobber', `acct-first-${++n}`, {
        return_to: RETURN_TO,
      });
      const tabs = await openTogether(browser, 2);
      expect(await finishAll(browser, tabs)).toEqual([303, 303]);
      expect(
        (await browser.get(callbackUrl(t.broker, 'jobber', { code: `code-first-${n}`, state: first.state })))
          .status,
      ).toBe(303);
    },
  );

  it('completes four tabs opened together after an earlier flow finished', async () => {
    const browser = new TestBrowser();
    const earlier = await startFlow(t.broker, browser, 'jobber', `acct-earlier-${++n}`, {
      return_to: RETURN_TO,
    });
    expect(
      (await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-earlier', state: earlier.state })))
        .status,
    ).toBe(303);
    const tabs = await openTogether(browser, 4);
    expect(await finishAll(browser, tabs)).toEqual([303, 303, 303, 303]);
  });

  it("still keeps each tab's flow to this browser: another browser cannot finish it", async () => {
    const browser = new TestBrowser();
    await startFlow(t.broker, browser, 'jobber', `acct-own-${++n}`, { return_to: RETURN_TO });
    const tabs = await openTogether(browser, 2);
    const stranger = new TestBrowser();
    await startFlow(t.broker, stranger, 'jobber', `acct-stranger-${++n}`, { return_to: RETURN_TO });
    for (const f of tabs)
      expect(
        (await stranger.get(callbackUrl(f.broker, f.provider, { code: 'code-stolen', state: f.state })))
          .status,
      ).toBe(400);
    expect(t.fake.tokenRequests.filter((r) => r.params.code === 'code-stolen')).toHaveLength(0);
    expect(await finishAll(browser, tabs)).toEqual([303, 303]);
  });
});
