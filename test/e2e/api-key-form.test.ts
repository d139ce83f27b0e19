import { Page } from 'playwright-core';
import { describeInChromium, withScreenshotOnFailure } from './support/chromium';
import { KEY_DISPLAY_NAME, KEY_PROVIDER_ID, useJourney } from './support/journey-env';

jest.setTimeout(60_000);

describeInChromium('the API-key form in Chromium', () => {
  const journey = useJourney();

  const verifyRequests = () => journey.env.fake.requests.filter((r) => r.path === '/verify');

  it('a wrong key shows the form again with a message; the right key then connects and lands back at return_to', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'api-key-form', async () => {
      const link = await journey.env.broker.connectLink(KEY_PROVIDER_ID, 'acct-keys', {
        return_to: journey.env.returnTo,
      });
      const opened = await page.goto(link, { waitUntil: 'domcontentloaded' });
      expect(opened!.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe(`Connect ${KEY_DISPLAY_NAME}`);
      const keyField = page.getByLabel('API key');
      const submit = page.getByRole('button', { name: `Connect ${KEY_DISPLAY_NAME}` });

      // An empty field is stopped by the browser itself: nothing is sent.
      await submit.click();
      expect(page.url()).toBe(link);
      expect(verifyRequests()).toHaveLength(0);

      await keyField.fill('wrong-key-0001');
      const [refused] = await Promise.all([
        page.waitForResponse(
          (r) => r.request().method() === 'POST' && r.url().endsWith(`/auth/${KEY_PROVIDER_ID}`),
        ),
        submit.click(),
      ]);
      expect(refused.status()).toBe(400);
      await expect(page.getByRole('alert').textContent()).resolves.toContain(
        `${KEY_DISPLAY_NAME} did not accept this key`,
      );
      // The form is there again, empty, ready for another try.
      await expect(keyField.inputValue()).resolves.toBe('');
      expect(verifyRequests()).toHaveLength(1);
      expect(verifyRequests()[0]!.headers['x-api-key']).toBe('wrong-key-0001');
      expect(
        (await journey.env.broker.api(`/internal/connections/${KEY_PROVIDER_ID}/acct-keys`)).status,
      ).toBe(404);

      await keyField.fill('good-key-0002');
      await Promise.all([
        page.waitForURL((url) => url.href.startsWith(`${journey.env.returnTo}?`), {
          waitUntil: 'domcontentloaded',
        }),
        submit.click(),
      ]);
      const back = new URL(page.url());
      expect(back.searchParams.get('connected')).toBe(KEY_PROVIDER_ID);
      expect(back.searchParams.get('connection_id')).toBe('acct-keys');
      expect(verifyRequests()).toHaveLength(2);

      const token = await journey.env.broker.api(`/internal/connections/${KEY_PROVIDER_ID}/acct-keys/token`);
      expect(token.status).toBe(200);
      expect(token.body).toMatchObject({
        auth_mode: 'api_key',
        api_key: 'good-key-0002',
        headers: { 'X-API-KEY': 'good-key-0002' },
        expires_at: null,
      });
    });
  });

  it('a replayed form, from another browser or from this one after success, answers 400 and changes nothing', async () => {
    const page = await journey.context.newPage();
    const other = await journey.env.browser.newContext();
    const otherPage = await other.newPage();
    try {
      await withScreenshotOnFailure([page, otherPage], 'api-key-replay', async () => {
        const link = await journey.env.broker.connectLink(KEY_PROVIDER_ID, 'acct-once', {
          return_to: journey.env.returnTo,
        });
        await page.goto(link, { waitUntil: 'domcontentloaded' });
        const fields = {
          flow: await page.locator('input[name="flow"]').inputValue(),
          csrf: await page.locator('input[name="csrf"]').inputValue(),
        };

        // Another browser holding the page's hidden fields, but not its session cookie.
        const stolen = await postForm(otherPage, { ...fields, api_key: 'good-key-intruder' });
        expect(stolen).toBe(400);
        await expect(otherPage.locator('h1').textContent()).resolves.toBe('This form has expired');
        expect(
          (await journey.env.broker.api(`/internal/connections/${KEY_PROVIDER_ID}/acct-once`)).status,
        ).toBe(404);

        await page.getByLabel('API key').fill('good-key-first');
        await Promise.all([
          page.waitForURL((url) => url.href.startsWith(`${journey.env.returnTo}?`)),
          page.getByRole('button', { name: `Connect ${KEY_DISPLAY_NAME}` }).click(),
        ]);

        // The same browser sending the used form again.
        const replayed = await postForm(page, { ...fields, api_key: 'good-key-second' });
        expect(replayed).toBe(400);
        await expect(page.locator('h1').textContent()).resolves.toBe('This form has expired');
        const token = await journey.env.broker.api(
          `/internal/connections/${KEY_PROVIDER_ID}/acct-once/token`,
        );
        expect(token.body.api_key).toBe('good-key-first');
        expect(
          verifyRequests().filter(
            (r) =>
              String(r.headers['x-api-key']).includes('intruder') ||
              String(r.headers['x-api-key']).includes('second'),
          ),
        ).toEqual([]);
      });
    } finally {
      await other.close();
    }
  });

  /** Submits a form to the broker's /auth/<key provider> from a broker page in this browser; answers the status. */
  async function postForm(page: Page, fields: Record<string, string>): Promise<number> {
    await page.goto(`${journey.env.broker.publicUrl}/healthz`);
    const inputs = Object.entries(fields)
      .map(
        ([name, value]) =>
          `<input type="hidden" name="${name}" value="${value.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`)}">`,
      )
      .join('');
    await page.setContent(
      `<form method="post" action="/auth/${KEY_PROVIDER_ID}">${inputs}<button type="submit">Send</button></form>`,
    );
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.request().method() === 'POST' && r.url().endsWith(`/auth/${KEY_PROVIDER_ID}`),
      ),
      page.getByRole('button', { name: 'Send' }).click(),
    ]);
    await page.waitForLoadState('domcontentloaded');
    return answer.status();
  }
});
