import { runCommand } from '../helpers/contract-process';
import { ROOT, connectInBrowser, expectProblem, useContractSuite, runCli } from '../helpers/contract-suite';
import { untilTrue as until } from '../helpers/until';

/**
 * The admin CLI run with the broker's environment, beside a running broker (docs/operations.md,
 * the admin CLI): providers, connections list/show/delete, keys generate/status.
 */
describe('contract, from outside on node dist/main.js: the admin CLI', () => {
  const suite = useContractSuite(1);

  beforeAll(async () => {
    // Connections for the listing and the key count, made as the connect flow makes them: one of
    // another provider, which `--provider jobber` must leave out.
    await connectInBrowser(suite.b1, 'jobber', 'acct-cli-flow', 'code-cli-flow');
    await connectInBrowser(suite.b1, 'process-street', 'acct-cli-other', 'code-cli-other');
  });

  describe('operations CLI, run with the broker environment', () => {
    const cliEnv = (): Record<string, string> => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...suite.env1, PUBLIC_URL: suite.b1.publicUrl }))
        if (v !== undefined) env[k] = v;
      return env;
    };

    it('`npm run cli -- providers` shows each provider with its mode, scopes and redirect URI, and no secret', async () => {
      const run = await runCommand(
        'npm',
        ['run', '--silent', 'cli', '--', 'providers'],
        { ...cliEnv(), HOME: process.env.HOME ?? '/tmp' },
        ROOT,
      );
      expect(run.code).toBe(0);
      const line = (id: string): string => run.stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
      expect(line('bexio')).toMatch(/\benabled\b.*\boauth2\b/);
      expect(line('bexio')).toContain('openid contact_show offline_access');
      expect(line('bexio')).toContain(`${suite.b1.publicUrl}/callback/bexio`);
      expect(line('process-street')).toContain('read,write');
      expect(line('jobber')).toContain(`${suite.b1.publicUrl}/callback/jobber`);
      expect(line('bonjoro')).not.toMatch(/\benabled\b/);
      expect(run.stdout + run.stderr).not.toMatch(/-secret/);
    });

    it('`connections list`, `show` and `delete` do what the internal API does (delete revokes at the provider)', async () => {
      const minted = suite.fake.mint();
      const put = await suite.b1.api('/internal/connections/jobber/cli-1', {
        method: 'PUT',
        body: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: 3600 },
      });
      expect(put.status).toBe(201);

      const list = await runCli(['connections', 'list', '--provider', 'jobber'], cliEnv());
      expect(list.code).toBe(0);
      const lines = list.stdout.trim().split('\n');
      expect(lines.some((l) => l.startsWith('jobber cli-1 active'))).toBe(true);
      expect(lines.every((l) => l.startsWith('jobber '))).toBe(true);

      const show = await runCli(['connections', 'show', 'jobber', 'cli-1'], cliEnv());
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toEqual(
        (await suite.b1.api('/internal/connections/jobber/cli-1')).body,
      );
      for (const run of [list, show]) {
        expect(run.stdout).not.toContain(minted.access_token as string);
        expect(run.stdout).not.toContain(minted.refresh_token as string);
      }

      const del = await runCli(['connections', 'delete', 'jobber', 'cli-1'], cliEnv());
      expect(del.code).toBe(0);
      expectProblem(await suite.b1.api('/internal/connections/jobber/cli-1'), 404, 'connection_not_found');
      await until(() => suite.fake.revocations.some((r) => r.params.token === minted.refresh_token), 5000);

      const missing = await runCli(['connections', 'show', 'jobber', 'cli-1'], cliEnv());
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('connection_not_found');
    });

    it('`keys generate` prints a fresh kid:base64(32 bytes) key; `keys status` counts connections per key id', async () => {
      const keys = await Promise.all([runCli(['keys', 'generate'], {}), runCli(['keys', 'generate'], {})]);
      const material = keys.map((run) => {
        expect(run.code).toBe(0);
        const m = /^([A-Za-z0-9._-]{1,64}):([A-Za-z0-9+/]+={0,2})\n$/.exec(run.stdout);
        expect(m).not.toBeNull();
        expect(Buffer.from(m![2]!, 'base64')).toHaveLength(32);
        return m![2];
      });
      expect(material[0]).not.toBe(material[1]);

      const listed = await suite.b1.api('/internal/connections?limit=1000');
      expect(listed.body.next_cursor).toBeNull();
      const status = await runCli(['keys', 'status'], cliEnv());
      expect(status.code).toBe(0);
      expect(status.stdout).toBe(`k1 ${listed.body.connections.length}\n`);
    });
  });
});
