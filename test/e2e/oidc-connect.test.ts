import { Page } from 'playwright-core';
import { describeInChromium, withScreenshotOnFailure } from './support/chromium';
import { OIDC_PROVIDER_ID, WRONG_ISSUER_PROVIDER_ID, useJourney } from './support/journey-env';
import { cancelAtConsent, consent, signIn } from './support/oidc-pages';

jest.setTimeout(60_000);

describeInChromium('connect journeys in Chromium against oidc-provider', () => {
  const journey = useJourney();

  const link = (connectionId: string) =>
    journey.env.broker.connectLink(OIDC_PROVIDER_ID, connectionId, { return_to: journey.env.returnTo });
  const backInApp = () => new RegExp(`^${escapeRegExp(journey.env.returnTo)}\\?`);

  async function connectAs(page: Page, connectionId: string, login: string): Promise<URL> {
    await page.goto(await link(connectionId), { waitUntil: 'domcontentloaded' });
    await signIn(page, login);
    await consent(page, backInApp());
    return new URL(page.url());
  }

  it('signs in and consents at the authorization server, then lands back at return_to with connected= and a stored connection', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'connect', async () => {
      await page.goto(await link('acct-alice'), { waitUntil: 'domcontentloaded' });
      // The broker sent the browser to the real server's sign-in page.
      expect(page.url().startsWith(`${journey.env.oidc.issuer}/interaction/`)).toBe(true);
      await signIn(page, 'alice');
      await consent(page, backInApp());

      const back = new URL(page.url());
      expect(back.searchParams.get('connected')).toBe(OIDC_PROVIDER_ID);
      expect(back.searchParams.get('connection_id')).toBe('acct-alice');
      expect(back.searchParams.get('error')).toBeNull();
      await expect(page.locator('h1').textContent()).resolves.toBe('Back in the app');

      const meta = await journey.env.broker.api(`/internal/connections/${OIDC_PROVIDER_ID}/acct-alice`);
      expect(meta.status).toBe(200);
      expect(meta.body.status).toBe('active');
      expect(meta.body.scopes).toEqual(expect.arrayContaining(['openid', 'offline_access']));

      // One authorization-code grant reached the server, and it succeeded (PKCE is required there).
      const state = await journey.env.oidc.state();
      expect(state.grants.filter((g) => g.grant_type === 'authorization_code')).toEqual([
        { grant_type: 'authorization_code', outcome: 'success' },
      ]);
      expect(state.refreshTokens.filter((r) => r.accountId === 'alice')).toHaveLength(1);
    });
  });

  it('cancelling at the consent page brings the user back with error=access_denied and stores nothing', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'cancel-at-consent', async () => {
      const grantsBefore = (await journey.env.oidc.state()).grants.length;
      await page.goto(await link('acct-cancelled'), { waitUntil: 'domcontentloaded' });
      await signIn(page, 'bob');
      await cancelAtConsent(page, backInApp());

      const back = new URL(page.url());
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('connected')).toBeNull();

      const meta = await journey.env.broker.api(`/internal/connections/${OIDC_PROVIDER_ID}/acct-cancelled`);
      expect(meta.status).toBe(404);
      expect(meta.body.code).toBe('connection_not_found');
      const keys = await journey.env.broker.broker.redis.keys(`*${OIDC_PROVIDER_ID}:acct-cancelled*`);
      expect(keys).toEqual([]);
      // No code was exchanged: the broker made no token request after the refusal.
      expect((await journey.env.oidc.state()).grants.length).toBe(grantsBefore);
    });
  });

  it('two tabs of one browser connect two accounts at once, each connection getting its own account', async () => {
    const tabA = await journey.context.newPage();
    const tabB = await journey.context.newPage();
    await withScreenshotOnFailure([tabA, tabB], 'two-tabs', async () => {
      // Both connect flows are started before either comes back: two flows in one broker session.
      await tabA.goto(await link('acct-tab-a'), { waitUntil: 'domcontentloaded' });
      await tabB.goto(await link('acct-tab-b'), { waitUntil: 'domcontentloaded' });
      await tabA.locator('input[name="login"]').waitFor();
      await tabB.locator('input[name="login"]').waitFor();

      await signIn(tabA, 'dana');
      await consent(tabA, backInApp());
      await signIn(tabB, 'erin');
      await consent(tabB, backInApp());

      expect(new URL(tabA.url()).searchParams.get('connection_id')).toBe('acct-tab-a');
      expect(new URL(tabB.url()).searchParams.get('connection_id')).toBe('acct-tab-b');
      expect(new URL(tabA.url()).searchParams.get('connected')).toBe(OIDC_PROVIDER_ID);
      expect(new URL(tabB.url()).searchParams.get('connected')).toBe(OIDC_PROVIDER_ID);

      // Each connection holds the token of the account signed in in its own tab.
      const tokenA = await journey.env.broker.api(
        `/internal/connections/${OIDC_PROVIDER_ID}/acct-tab-a/token`,
      );
      const tokenB = await journey.env.broker.api(
        `/internal/connections/${OIDC_PROVIDER_ID}/acct-tab-b/token`,
      );
      expect(tokenA.status).toBe(200);
      expect(tokenB.status).toBe(200);
      await expect(journey.env.oidc.userinfo(tokenA.body.access_token)).resolves.toMatchObject({
        status: 200,
        body: { sub: 'dana' },
      });
      await expect(journey.env.oidc.userinfo(tokenB.body.access_token)).resolves.toMatchObject({
        status: 200,
        body: { sub: 'erin' },
      });
    });
  });

  it('the access token the broker hands out works against the authorization server’s userinfo endpoint', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'userinfo', async () => {
      const back = await connectAs(page, 'acct-frank', 'frank');
      expect(back.searchParams.get('connected')).toBe(OIDC_PROVIDER_ID);

      const token = await journey.env.broker.api(
        `/internal/connections/${OIDC_PROVIDER_ID}/acct-frank/token`,
      );
      expect(token.status).toBe(200);
      expect(token.body.auth_mode).toBe('oauth2');
      expect(token.body.token_type).toBe('Bearer');
      // The server's 60 s access-token life, read from expires_in.
      const lifeMs = Date.parse(token.body.expires_at) - Date.now();
      expect(lifeMs).toBeGreaterThan(0);
      expect(lifeMs).toBeLessThanOrEqual(61_000);

      const userinfo = await journey.env.oidc.userinfo(token.body.access_token);
      expect(userinfo.status).toBe(200);
      expect(userinfo.body).toEqual({ sub: 'frank', name: 'Test user frank' });
      // A token the server never issued is refused there: the check above means something.
      expect((await journey.env.oidc.userinfo('not-a-token')).status).toBe(401);
    });
  });

  it('an authorization response whose iss is not the declared issuer is refused with error=invalid_issuer and the code is never exchanged', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'wrong-issuer', async () => {
      const codeGrantsBefore = (await journey.env.oidc.state()).grants.filter(
        (g) => g.grant_type === 'authorization_code',
      ).length;
      const link = await journey.env.broker.connectLink(WRONG_ISSUER_PROVIDER_ID, 'acct-mixup', {
        return_to: journey.env.returnTo,
      });
      await page.goto(link, { waitUntil: 'domcontentloaded' });
      await signIn(page, 'mallory');
      // The real server answers with its own iss (RFC 9207 §2), which is not the declared one.
      const [callback] = await Promise.all([
        page.waitForRequest((r) =>
          r.url().startsWith(`${journey.env.broker.publicUrl}/callback/${WRONG_ISSUER_PROVIDER_ID}?`),
        ),
        consent(page, backInApp()),
      ]);
      expect(new URL(callback.url()).searchParams.get('iss')).toBe(journey.env.oidc.issuer);

      const back = new URL(page.url());
      expect(back.searchParams.get('error')).toBe('invalid_issuer');
      expect(back.searchParams.get('connected')).toBeNull();
      expect(
        (await journey.env.broker.api(`/internal/connections/${WRONG_ISSUER_PROVIDER_ID}/acct-mixup`)).status,
      ).toBe(404);
      const codeGrants = (await journey.env.oidc.state()).grants.filter(
        (g) => g.grant_type === 'authorization_code',
      );
      expect(codeGrants).toHaveLength(codeGrantsBefore);
    });
  });
});

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
