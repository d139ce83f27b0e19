import { Browser, Page } from 'playwright-core';
import { useDemosOnRedis } from '../helpers/demo-fixture';
import {
  describeInChromium,
  expectPageFits,
  launchChromium,
  inPageAtWidth,
  screenshot,
} from './support/chromium';

jest.setTimeout(90_000);

/** A phone and a desktop. */
const WIDTHS = [390, 1280] as const;

/**
 * The demo's pages (`npm run demo`) and the sandbox's consent page, in Chromium at phone and
 * desktop widths: each is kept in test-artifacts/pages-demo-<name>-<width>.png, must fit the screen
 * without sideways scrolling, and must say what to do next.
 */
describeInChromium('the demo’s pages at 390 px and 1280 px', () => {
  // One private Redis for both; every key the demos wrote there goes with it.
  const demos = useDemosOnRedis({
    main: { keyPrefix: 'demo-pages:' },
    offline: { keyPrefix: 'demo-pages-offline:', internal: false },
  });
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  /** Screenshot, then: the title, the words, no sideways scroll, readable text, a full-size button. */
  async function check(page: Page, width: number, name: string, title: string, mustShow: RegExp[]) {
    await screenshot(page, `pages-demo-${name}-${width}`);
    expect((await page.locator('h1').innerText()).trim()).toBe(title);
    const text = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    for (const words of mustShow) expect(text).toMatch(words);
    await expectPageFits(page, width);
  }

  async function buttonFits(page: Page, name: string, width: number): Promise<void> {
    const box = await page.getByRole('button', { name, exact: true }).boundingBox({ timeout: 5_000 });
    expect(box).not.toBeNull();
    expect(box!.height).toBeGreaterThanOrEqual(40);
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(width);
  }

  async function internal(path: string, method = 'GET'): Promise<Response> {
    return fetch(`${demos.main.internalUrl}/internal/connections/sandbox/demo-user${path}`, {
      method,
      headers: { authorization: `Bearer ${demos.main.internalApiKey}` },
    });
  }

  /** Removes demo-user's connection if a journey before made one: each journey starts without it. */
  async function noConnection(): Promise<void> {
    expect([204, 404]).toContain((await internal('', 'DELETE')).status);
    expect((await internal('/token')).status).toBe(404);
  }

  /** From the start page, through its button, to the sandbox's consent page. */
  async function toConsent(page: Page, width: number): Promise<void> {
    const start = await page.goto(`${demos.main.publicUrl}/demo`, { waitUntil: 'load' });
    expect(start!.status()).toBe(200);
    await check(page, width, 'start', 'OAuth Broker demo', [/consent page/, /fetch the token/]);
    await buttonFits(page, 'Connect a Sandbox account', width);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/sandbox/authorize'),
      page.getByRole('button', { name: 'Connect a Sandbox account' }).click(),
    ]);
    await page.waitForLoadState('load');
    await check(page, width, 'consent', 'Allow access to your Sandbox account?', [/demo-user/]);
    await buttonFits(page, 'Allow', width);
    await buttonFits(page, 'Deny', width);
  }

  it.each(WIDTHS)('at %i px: start, consent, Allow, and the connected page', async (width) => {
    // No connection yet, so the checks below see the one this journey makes.
    await noConnection();
    await inPageAtWidth(browser, width, `pages-demo-allow-${width}`, async (page) => {
      await toConsent(page, width);
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/demo/done'),
        page.getByRole('button', { name: 'Allow', exact: true }).click(),
      ]);
      await page.waitForLoadState('load');
      await check(page, width, 'connected', 'Sandbox is connected', [
        /demo-user/,
        /fetch a fresh access token from the internal API/,
        /curl -s -H "Authorization: Bearer <internal API key>"/,
        /\/internal\/connections\/sandbox\/demo-user\/token/,
        /Try it through the proxy/,
        /\/internal\/proxy\/sandbox\/demo-user\/notes/,
      ]);
      expect(await page.content()).not.toContain(demos.main.internalApiKey);
      await buttonFits(page, 'Connect again', width);

      const meta = await internal('');
      expect(meta.status).toBe(200);
      expect(await meta.json()).toMatchObject({ status: 'active' });
      const token = await internal('/token');
      expect(token.status).toBe(200);
      expect(await token.json()).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
    });
  });

  it.each(WIDTHS)(
    'at %i px: Deny at consent lands on the failure page, which offers Try again',
    async (width) => {
      await noConnection();
      await inPageAtWidth(browser, width, `pages-demo-deny-${width}`, async (page) => {
        await toConsent(page, width);
        await Promise.all([
          page.waitForURL((url) => url.pathname === '/demo/done'),
          page.getByRole('button', { name: 'Deny', exact: true }).click(),
        ]);
        await page.waitForLoadState('load');
        expect(new URL(page.url()).searchParams.get('error')).toBe('access_denied');
        await check(page, width, 'denied', 'Connection cancelled', [
          /You chose Deny, so the broker stored nothing/,
          /Reference: access_denied/,
        ]);
        await buttonFits(page, 'Try again', width);
        expect((await internal('/token')).status).toBe(404);
      });
    },
  );

  it.each(WIDTHS)(
    'at %i px: with the internal API unreachable, the connect button leads to "not ready", which offers Try again',
    async (width) => {
      await inPageAtWidth(browser, width, `pages-demo-unavailable-${width}`, async (page) => {
        await page.goto(`${demos.offline.publicUrl}/demo`, { waitUntil: 'load' });
        const [answer] = await Promise.all([
          page.waitForResponse((r) => new URL(r.url()).pathname === '/demo/connect'),
          page.getByRole('button', { name: 'Connect a Sandbox account' }).click(),
        ]);
        await page.waitForLoadState('load');
        expect(answer.status()).toBe(503);
        await check(page, width, 'unavailable', 'The broker is not ready', [
          /is Redis still running/,
          /try again/,
        ]);
        // Like every other demo page, it offers the next step as a button.
        await buttonFits(page, 'Try again', width);
      });
    },
  );
});
