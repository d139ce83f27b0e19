import { idleKeepAlive } from '../helpers/contract-process';
import { connectInBrowser, useContractSuite } from '../helpers/contract-suite';
import { untilTrue as until } from '../helpers/until';

/**
 * SIGTERM on the built broker (docs/operations.md, processes, Redis and health): the wait for a
 * request in flight is bounded by SHUTDOWN_TIMEOUT, idle keep-alive connections close at once, and
 * the process exits 0.
 */
describe('contract, from outside on node dist/main.js: SIGTERM', () => {
  const suite = useContractSuite(2);

  beforeAll(async () => {
    // The in-flight request below refreshes a connection made through the browser.
    await connectInBrowser(suite.b1, 'jobber', 'acct-tok', 'code-tok');
  });

  describe('SIGTERM', () => {
    it('bounds the wait for a request in flight by SHUTDOWN_TIMEOUT, stores the refresh already sent to the provider, then exits 0', async () => {
      const minted = suite.slowFake.mint();
      expect(
        (
          await suite.b2.api('/internal/connections/jobber/slow-1', {
            method: 'PUT',
            body: { access_token: minted.access_token, refresh_token: minted.refresh_token },
          })
        ).status,
      ).toBe(201);
      suite.slowFake.options.tokenDelayMs = 20_000;
      const before = suite.slowFake.refreshRequests.length;
      const inFlight = suite.b2.api('/internal/connections/jobber/slow-1/token?force_refresh=true').then(
        (answer) => ({ answer, at: Date.now() }),
        (error: Error) => ({ answer: error, at: Date.now() }),
      );
      await until(() => suite.slowFake.refreshRequests.length > before);
      const sentAt = suite.slowFake.refreshRequests[suite.slowFake.refreshRequests.length - 1]!.at;
      suite.b2.child.kill('SIGTERM');
      // The request in flight is cut long before the provider would have answered
      // (SHUTDOWN_TIMEOUT=1 against a 20 s answer).
      const { answer, at } = await inFlight;
      expect(at).toBeLessThan(sentAt + 20_000);
      expect(answer instanceof Error || answer.status !== 200).toBe(true);
      // The refresh already sent to the provider is still waited for and stored before Redis
      // closes (docs/operations.md): the process exits 0 once the provider has answered.
      await suite.b2.waitForExit();
      expect(suite.b2.exitCode).toBe(0);
      expect(Date.now()).toBeGreaterThanOrEqual(sentAt + 20_000);
    });

    it('closes idle keep-alive connections at once, finishes the request in flight, and exits 0 well before SHUTDOWN_TIMEOUT', async () => {
      const idle = await Promise.all([
        idleKeepAlive(suite.b1.publicUrl, '/healthz'),
        idleKeepAlive(suite.b1.internalUrl, '/readyz'),
      ]);
      expect(idle.map((i) => i.status)).toEqual([200, 200]);
      suite.fake.options.tokenDelayMs = 1500;
      const before = suite.fake.refreshRequests.length;
      const inFlight = suite.b1.api('/internal/connections/jobber/acct-tok/token?force_refresh=true');
      await until(() => suite.fake.refreshRequests.length > before);
      let answered = false;
      void inFlight.then(() => (answered = true));
      suite.b1.child.kill('SIGTERM');
      await Promise.all(idle.map((i) => i.closed));
      // The idle sockets went first, while the request in flight still waited on the provider.
      expect(answered).toBe(false);
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body.access_token).toBe(suite.fake.issued[suite.fake.issued.length - 1]!.access_token);
      // SHUTDOWN_TIMEOUT is 60 s here: an exit within 15 s means nothing waited on an idle socket.
      await Promise.race([
        suite.b1.waitForExit(),
        new Promise((_, fail) => setTimeout(() => fail(new Error('no exit within 15 s')), 15_000)),
      ]);
      expect(suite.b1.exitCode).toBe(0);
      suite.fake.options.tokenDelayMs = 0;
    }, 30_000);
  });
});
