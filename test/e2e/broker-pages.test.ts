import { Page } from 'playwright-core';
import { describeInChromium, expectPageFits, inPageAtWidth, screenshot } from './support/chromium';
import {
  JourneyEnv,
  KEY_DISPLAY_NAME,
  KEY_PROVIDER_ID,
  OIDC_DISPLAY_NAME,
  OIDC_PROVIDER_ID,
  startJourneyEnv,
} from './support/journey-env';
import { cancelAtConsent, signIn } from './support/oidc-pages';

jest.setTimeout(90_000);

/** A phone and a desktop. */
const WIDTHS = [390, 1280] as const;

/** Words that tell the user what to do next, one of which every page must say. */
const NEXT_STEP =
  /go back to the app|start connecting again|try again|close this window|paste a key|an operator enables it/i;

interface PageCheck {
  name: string;
  status: number;
  /** Text the page must show: the provider's display name where there is one. */
  mustShow: string[];
}

/**
 * The pages the broker itself shows, in Chromium at phone and desktop widths: each is kept as a
 * screenshot in test-artifacts/pages-<name>-<width>.png, and must name the provider, say what to do next, and fit
 * the screen without sideways scrolling.
 */
describeInChromium('the broker’s own pages at 390 px and 1280 px', () => {
  let env: JourneyEnv;

  beforeAll(async () => {
    env = await startJourneyEnv();
  });

  afterAll(async () => {
    await env?.close();
  });

  async function check(page: Page, width: number, expected: PageCheck, status: number): Promise<void> {
    await screenshot(page, `pages-${expected.name}-${width}`);
    expect({ page: expected.name, status }).toEqual({ page: expected.name, status: expected.status });
    const text = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    for (const words of expected.mustShow) expect(text).toContain(words);
    expect(text).toMatch(NEXT_STEP);
    // A title in words, not a bare error code.
    const title = (await page.locator('h1').innerText()).trim();
    expect(title).toMatch(/[A-Za-z]+ [A-Za-z]+/);
    expect(title).not.toMatch(/_/);
    await expectPageFits(page, width);
  }

  /** Pastes `key` into the API-key form, submits it and waits for the answer page. */
  async function submitKey(page: Page, key: string) {
    await page.getByLabel('API key').fill(key);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: `Connect ${KEY_DISPLAY_NAME}` }).click(),
    ]);
    await page.waitForLoadState('load');
    return answer;
  }

  it.each(WIDTHS)(
    'at %i px the API-key form, its error, the success page and a used link are finished pages',
    async (width) => {
      await inPageAtWidth(env.browser, width, `pages-api-key-${width}`, async (page) => {
        // The longest connection id there can be, without a break opportunity, shown on the success page.
        const link = await env.broker.connectLink(KEY_PROVIDER_ID, `acct_${width}_${'x'.repeat(190)}`);
        const form = await page.goto(link, { waitUntil: 'load' });
        await check(
          page,
          width,
          { name: 'api-key-form', status: 200, mustShow: [KEY_DISPLAY_NAME, 'API key'] },
          form!.status(),
        );
        const button = await page.getByRole('button', { name: `Connect ${KEY_DISPLAY_NAME}` }).boundingBox();
        expect(button!.height).toBeGreaterThanOrEqual(40);
        expect(button!.x + button!.width).toBeLessThanOrEqual(width);

        const refused = await submitKey(page, 'wrong-key-pages');
        await check(
          page,
          width,
          {
            name: 'api-key-form-error',
            status: 400,
            mustShow: [KEY_DISPLAY_NAME, 'did not accept this key'],
          },
          refused.status(),
        );

        const accepted = await submitKey(page, 'good-key-pages');
        await check(
          page,
          width,
          { name: 'connected', status: 200, mustShow: [`${KEY_DISPLAY_NAME} is connected`] },
          accepted.status(),
        );

        const used = await page.goto(link, { waitUntil: 'load' });
        await check(
          page,
          width,
          { name: 'link-used', status: 400, mustShow: [KEY_DISPLAY_NAME, 'no longer works'] },
          used!.status(),
        );
      });
    },
  );

  it.each(WIDTHS)(
    'at %i px the pages after a cancelled or unmatched sign-in and for a provider not set up are finished pages',
    async (width) => {
      await inPageAtWidth(env.browser, width, `pages-errors-${width}`, async (page) => {
        // Without return_to, the broker shows the outcome itself.
        const link = await env.broker.connectLink(OIDC_PROVIDER_ID, `acct-cancel-${width}`);
        const [callback] = await Promise.all([
          page.waitForResponse((r) => r.url().startsWith(`${env.broker.publicUrl}/callback/`)),
          (async () => {
            await page.goto(link, { waitUntil: 'domcontentloaded' });
            await signIn(page, 'pages-user');
            await cancelAtConsent(page, (url) => url.href.startsWith(`${env.broker.publicUrl}/callback/`));
          })(),
        ]);
        await page.waitForLoadState('load');
        await check(
          page,
          width,
          { name: 'cancelled', status: 400, mustShow: [OIDC_DISPLAY_NAME, 'Connection cancelled'] },
          callback.status(),
        );

        const unmatched = await page.goto(
          `${env.broker.publicUrl}/callback/${OIDC_PROVIDER_ID}?code=abc&state=not-a-flow-of-this-browser`,
          { waitUntil: 'load' },
        );
        await check(
          page,
          width,
          { name: 'unknown-flow', status: 400, mustShow: [OIDC_DISPLAY_NAME] },
          unmatched!.status(),
        );

        // A built-in provider without credentials in this environment.
        const disabled = await page.goto(`${env.broker.publicUrl}/auth/bexio?session=anything`, {
          waitUntil: 'load',
        });
        await check(
          page,
          width,
          { name: 'not-enabled', status: 404, mustShow: ['is not set up'] },
          disabled!.status(),
        );
      });
    },
  );
});
