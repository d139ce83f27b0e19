import { TestBrowser } from '../helpers/browser';
import { expectProblem, useContractSuite } from '../helpers/contract-suite';

/**
 * Provider ids on both listeners of the built broker (docs/api.md, docs/providers.md): unknown
 * and not enabled answer 404 saying which, and the providers list shows what is enabled.
 */
describe('contract, from outside on node dist/main.js: provider ids on both listeners', () => {
  const suite = useContractSuite(1);

  describe('provider ids', () => {
    it('answers 404 provider_not_enabled naming <PROVIDER>_CLIENT_ID and _CLIENT_SECRET for a built-in without credentials, on the internal API', async () => {
      for (const [id, prefix] of [
        ['bonjoro', 'BONJORO'],
        ['respond-io', 'RESPOND_IO'],
      ]) {
        const session = await suite.b1.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: id, connection_id: 'x' },
        });
        expectProblem(session, 404, 'provider_not_enabled');
        expect(session.body.detail).toContain(`${prefix}_CLIENT_ID`);
        expect(session.body.detail).toContain(`${prefix}_CLIENT_SECRET`);
        expectProblem(await suite.b1.api(`/internal/connections/${id}/x/token`), 404, 'provider_not_enabled');
        expectProblem(await suite.b1.api(`/internal/connections/${id}/x`), 404, 'provider_not_enabled');
      }
      expectProblem(
        await suite.b1.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: 'acme', connection_id: 'x' },
        }),
        404,
        'provider_not_found',
      );
      expectProblem(await suite.b1.api('/internal/connections/acme/x/token'), 404, 'provider_not_found');
    });

    it('answers 404 pages on /auth and /callback that say which: unknown, or not enabled with the variables that enable it', async () => {
      const browser = new TestBrowser();
      for (const path of ['/auth/respond-io?session=abc', '/callback/respond-io?code=c&state=s']) {
        const page = await browser.get(`${suite.b1.publicUrl}${path}`);
        expect(page.status).toBe(404);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.body).toContain('RESPOND_IO_CLIENT_ID');
        expect(page.body).toContain('RESPOND_IO_CLIENT_SECRET');
      }
      const unknown = await browser.get(`${suite.b1.publicUrl}/auth/acme?session=abc`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toContain('acme');
      expect(unknown.body).not.toContain('_CLIENT_ID');
    });

    it('lists the enabled providers with their scopes and redirect URIs, and no secret', async () => {
      const res = await suite.b1.api('/internal/providers');
      expect(res.status).toBe(200);
      const byId = Object.fromEntries(
        (res.body.providers as Array<Record<string, unknown>>).map((p) => [p.id, p]),
      );
      expect(Object.keys(byId).sort()).toEqual(['bexio', 'jobber', 'process-street']);
      for (const id of ['bexio', 'jobber', 'process-street'])
        expect(byId[id]!.redirect_uri).toBe(`${suite.b1.publicUrl}/callback/${id}`);
      expect(byId.bexio!.scopes).toEqual(['openid', 'contact_show', 'offline_access']);
      expect(byId['process-street']!.scopes).toEqual(['read', 'write']);
      expect(JSON.stringify(res.body)).not.toMatch(/-secret/);
    });
  });
});
