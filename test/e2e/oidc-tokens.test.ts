import { Page } from 'playwright-core';
import { RefreshTokenState } from './support/authorization-server';
import { describeInChromium, withScreenshotOnFailure } from './support/chromium';
import { OIDC_PROVIDER_ID, useJourney } from './support/journey-env';
import { consent, signIn } from './support/oidc-pages';

jest.setTimeout(60_000);

/**
 * What happens to a connection made in the browser afterwards, as the real authorization server
 * sees it: rotation on refresh, reuse detection revoking the grant, revocation on delete.
 */
describeInChromium('token journeys in Chromium against oidc-provider', () => {
  const journey = useJourney();

  const path = (connectionId: string) => `/internal/connections/${OIDC_PROVIDER_ID}/${connectionId}`;

  async function connectAs(page: Page, connectionId: string, login: string): Promise<void> {
    const link = await journey.env.broker.connectLink(OIDC_PROVIDER_ID, connectionId, {
      return_to: journey.env.returnTo,
    });
    await page.goto(link, { waitUntil: 'domcontentloaded' });
    await signIn(page, login);
    await consent(page, (url) => url.href.startsWith(`${journey.env.returnTo}?`));
    expect(new URL(page.url()).searchParams.get('connected')).toBe(OIDC_PROVIDER_ID);
  }

  async function refreshTokensOf(login: string): Promise<RefreshTokenState[]> {
    return (await journey.env.oidc.state()).refreshTokens.filter((r) => r.accountId === login);
  }

  async function refreshGrantsAtServer(): Promise<number> {
    return (await journey.env.oidc.state()).grants.filter((g) => g.grant_type === 'refresh_token').length;
  }

  it('force_refresh goes through the server’s refresh-token rotation, and the broker keeps using the newest refresh token', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'refresh-rotation', async () => {
      await connectAs(page, 'acct-gina', 'gina');
      const first = await journey.env.broker.api(`${path('acct-gina')}/token`);
      expect(first.status).toBe(200);
      const [r1] = await refreshTokensOf('gina');
      expect(r1!.state).toBe('live');

      const second = await journey.env.broker.api(`${path('acct-gina')}/token?force_refresh=true`);
      expect(second.status).toBe(200);
      expect(second.body.access_token).not.toBe(first.body.access_token);
      let tokens = await refreshTokensOf('gina');
      expect(tokens.map((t) => t.state)).toEqual(['consumed', 'live']);
      expect(tokens[1]!.grantId).toBe(r1!.grantId);

      // A second refresh only succeeds when the broker stored the rotated refresh token: the
      // consumed one would make the server revoke the grant.
      const third = await journey.env.broker.api(`${path('acct-gina')}/token?force_refresh=true`);
      expect(third.status).toBe(200);
      tokens = await refreshTokensOf('gina');
      expect(tokens.map((t) => t.state)).toEqual(['consumed', 'consumed', 'live']);
      expect((await journey.env.oidc.state()).revokedGrants).not.toContain(r1!.grantId);

      await expect(journey.env.oidc.userinfo(third.body.access_token)).resolves.toMatchObject({
        status: 200,
        body: { sub: 'gina' },
      });
      const meta = await journey.env.broker.api(path('acct-gina'));
      expect(meta.body.status).toBe('active');
      expect(meta.body.last_refreshed_at).not.toBeNull();
      expect(meta.body.refresh_failures).toBe(0);
    });
  });

  it('a reused old refresh token makes the server revoke the grant, and the broker answers 409 reauthorization_required without retrying', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'refresh-reuse', async () => {
      await connectAs(page, 'acct-hank', 'hank');
      expect((await journey.env.broker.api(`${path('acct-hank')}/token?force_refresh=true`)).status).toBe(
        200,
      );
      const [old, current] = await refreshTokensOf('hank');
      expect([old!.state, current!.state]).toEqual(['consumed', 'live']);

      // Another copy of the connection holds the refresh token the rotation already consumed, as
      // a stale replica or a leaked token would.
      const put = await journey.env.broker.api(path('acct-hank-stale'), {
        method: 'PUT',
        body: { access_token: 'stale-access-token', refresh_token: old!.value, expires_in: 3600 },
      });
      expect(put.status).toBe(201);

      const before = await refreshGrantsAtServer();
      const grantsBefore = (await journey.env.oidc.state()).grants.length;
      const reused = await journey.env.broker.api(`${path('acct-hank-stale')}/token?force_refresh=true`);
      expect(reused.status).toBe(409);
      expect(reused.body.code).toBe('reauthorization_required');
      // One refresh request, refused; the server revoked the whole grant (RFC 9700 §4.14.2).
      const state = await journey.env.oidc.state();
      expect(state.grants.slice(grantsBefore)).toEqual([
        { grant_type: 'refresh_token', outcome: 'error', error: 'invalid_grant' },
      ]);
      expect(state.revokedGrants).toContain(old!.grantId);
      expect((await refreshTokensOf('hank')).map((t) => t.state)).toEqual(['gone', 'gone']);

      // Asking again answers from the stored status: no loop of refresh attempts at the server.
      const again = await journey.env.broker.api(`${path('acct-hank-stale')}/token`);
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('reauthorization_required');
      expect(await refreshGrantsAtServer()).toBe(before + 1);
      const staleMeta = await journey.env.broker.api(path('acct-hank-stale'));
      expect(staleMeta.body.status).toBe('reauthorization_required');
      expect(staleMeta.body.next_refresh_at).toBeNull();

      // The browser-made connection shared the grant: its refresh token died with it.
      const original = await journey.env.broker.api(`${path('acct-hank')}/token?force_refresh=true`);
      expect(original.status).toBe(409);
      expect(original.body.code).toBe('reauthorization_required');
      expect((await journey.env.broker.api(path('acct-hank'))).body.status).toBe('reauthorization_required');
    });
  });

  it('deleting a connection revokes it at the server: its refresh token and access token stop working', async () => {
    const page = await journey.context.newPage();
    await withScreenshotOnFailure(page, 'delete-revokes', async () => {
      await connectAs(page, 'acct-ivy', 'ivy');
      const token = await journey.env.broker.api(`${path('acct-ivy')}/token`);
      expect(token.status).toBe(200);
      await expect(journey.env.oidc.userinfo(token.body.access_token)).resolves.toMatchObject({
        status: 200,
      });
      const [refreshToken] = await refreshTokensOf('ivy');
      expect(refreshToken!.state).toBe('live');

      const deleted = await journey.env.broker.api(path('acct-ivy'), { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      expect((await journey.env.broker.api(path('acct-ivy'))).status).toBe(404);

      // The delete answers first and revokes afterwards: wait (briefly) for the server to see it.
      const deadline = Date.now() + 5000;
      while ((await refreshTokensOf('ivy'))[0]!.state !== 'gone' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const state = await journey.env.oidc.state();
      expect(
        state.requests.filter((r) => r.method === 'POST' && r.path === '/token/revocation'),
      ).toHaveLength(1);
      expect(state.revokedGrants).toContain(refreshToken!.grantId);

      const refreshed = await journey.env.oidc.refresh(journey.env.client, refreshToken!.value);
      expect(refreshed.status).toBe(400);
      expect(refreshed.body.error).toBe('invalid_grant');
      expect((await journey.env.oidc.userinfo(token.body.access_token)).status).toBe(401);
    });
  });
});
