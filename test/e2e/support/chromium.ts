import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, Page, chromium } from 'playwright-core';

/** Debian's Chromium; E2E_CHROMIUM_PATH points elsewhere (another install, or a missing one to see the skip). */
export const CHROMIUM_PATH = process.env.E2E_CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS_DIR = join(__dirname, '..', '..', '..', 'test-artifacts');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Only loopback exists here: a page's third-party asset (oidc-provider's dev pages import a web
  // font) fails at once instead of waiting on DNS.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

export const chromiumAvailable = existsSync(CHROMIUM_PATH);

/**
 * `describe` when Debian's Chromium is installed; otherwise the block is skipped and the reason
 * printed, so a skipped e2e run is never mistaken for a passing one.
 */
export function describeInChromium(name: string, body: () => void): void {
  if (chromiumAvailable) {
    describe(name, body);
    return;
  }
  console.warn(
    `SKIPPED e2e "${name}": ${CHROMIUM_PATH} is missing. Install it with \`apt-get install -y chromium\` (.ci/run does this) and run \`npm run test:e2e\`.`,
  );
  describe.skip(name, body);
}

/** A phone (touch, 2× pixels, 844 px tall) below 600 px wide, else a desktop window 800 px tall. */
export function newContextAtWidth(browser: Browser, width: number): Promise<BrowserContext> {
  return width < 600
    ? browser.newContext({
        viewport: { width, height: 844 },
        isMobile: true,
        hasTouch: true,
        deviceScaleFactor: 2,
      })
    : browser.newContext({ viewport: { width, height: 800 } });
}

/**
 * The page fits `width` without sideways scrolling (checked against the window and the chosen
 * width both: a phone may widen its layout viewport to fit), with body text of at least 14 px.
 * Evaluated in the page: this project has no DOM types.
 */
export async function expectPageFits(page: Page, width: number): Promise<void> {
  const layout = await page.evaluate<{ scrollWidth: number; innerWidth: number; fontSize: number }>(
    `({ scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth,
        fontSize: parseFloat(getComputedStyle(document.querySelector('main p')).fontSize) })`,
  );
  expect(layout.scrollWidth).toBeLessThanOrEqual(layout.innerWidth);
  expect(layout.innerWidth).toBe(width);
  expect(layout.fontSize).toBeGreaterThanOrEqual(14);
}

/**
 * A page in a fresh browser profile at `width` (newContextAtWidth), for one journey: kept as
 * test-artifacts/failed-<name>.png when the journey fails (withScreenshotOnFailure), and its
 * profile closed afterwards either way.
 */
export async function inPageAtWidth(
  browser: Browser,
  width: number,
  name: string,
  journey: (page: Page) => Promise<void>,
): Promise<void> {
  const context = await newContextAtWidth(browser, width);
  try {
    const page = await context.newPage();
    await withScreenshotOnFailure(page, name, () => journey(page));
  } finally {
    await context.close();
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: FLAGS, timeout: 30_000 });
}

/**
 * Runs a journey on its pages; when it fails, each page as it was is kept in test-artifacts/failed-<name>.png
 * (git-ignored) so the failure can be looked at, then the failure goes on.
 */
export async function withScreenshotOnFailure<T>(
  pages: Page | Page[],
  name: string,
  journey: () => Promise<T>,
): Promise<T> {
  try {
    return await journey();
  } catch (error) {
    const list = Array.isArray(pages) ? pages : [pages];
    await Promise.all(
      list.map((page, i) =>
        screenshot(page, `failed-${name}${list.length > 1 ? `-tab${i + 1}` : ''}`).catch(() => undefined),
      ),
    );
    throw error;
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true, timeout: 10_000 });
  return path;
}
