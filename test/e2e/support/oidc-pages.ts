import { Page } from 'playwright-core';

/**
 * The steps a user takes on oidc-provider's own development pages (devInteractions): a sign-in
 * form (any login, any password) and a consent page with "Continue" and "[ Cancel ]".
 */
export async function signIn(page: Page, login: string): Promise<void> {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any-password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).waitFor();
}

/** On the consent page: agree, and wait until the browser has left the authorization server. */
export async function consent(page: Page, leaveTo: string | RegExp | ((url: URL) => boolean)): Promise<void> {
  await Promise.all([
    page.waitForURL(leaveTo, { waitUntil: 'domcontentloaded' }),
    page.getByRole('button', { name: 'Continue' }).click(),
  ]);
}

/** On the consent page: cancel, and wait until the browser has left the authorization server. */
export async function cancelAtConsent(
  page: Page,
  leaveTo: string | RegExp | ((url: URL) => boolean),
): Promise<void> {
  await Promise.all([
    page.waitForURL(leaveTo, { waitUntil: 'domcontentloaded' }),
    page.getByRole('link', { name: '[ Cancel ]' }).click(),
  ]);
}
