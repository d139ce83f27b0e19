import { join, resolve } from 'node:path';
import { baseEnv, providerEnv } from '../helpers/broker-harness';
import { ensureBuilt } from '../helpers/broker-process';
import { runCommand } from '../helpers/contract-process';
import { useBrokerOnRedis } from '../helpers/broker-fixture';

const CLI = join(resolve(__dirname, '../..'), 'dist', 'cli', 'main.js');

describe('CLI: connections list --end-user U --tag k:v', () => {
  const t = useBrokerOnRedis((fakeUrl) => providerEnv('bonjoro', fakeUrl));

  function cli(args: string[]) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({
      ...baseEnv(9),
      REDIS_URL: t.redis.url,
      ...providerEnv('jobber', t.fake.url),
      ...providerEnv('bonjoro', t.fake.url),
    }))
      if (v !== undefined) env[k] = v;
    return runCommand(process.execPath, [CLI, ...args], env);
  }

  beforeAll(async () => {
    await ensureBuilt();
    const put = (provider: string, id: string, extra: Record<string, unknown>) =>
      t.broker.api(`/internal/connections/${provider}/${id}`, {
        method: 'PUT',
        body: { access_token: `at-${id}`, ...extra },
      });
    await put('jobber', 'c-1', { end_user: { id: 'u_1' }, tags: { org: '42' } });
    await put('jobber', 'c-2', { end_user: { id: 'u_2' }, tags: { org: '42', plan: 'pro' } });
    await put('bonjoro', 'c-3', { end_user: { id: 'u_1' }, tags: { org: '7' } });
    await put('bonjoro', 'c-4', {});
  }, 180_000);

  const ids = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ').slice(0, 2).join(':'));

  it('filters by end user, by tags, and both, in listing order, and shows the owner', async () => {
    const byUser = await cli(['connections', 'list', '--end-user', 'u_1']);
    expect([byUser.code, ids(byUser.stdout)]).toEqual([0, ['bonjoro:c-3', 'jobber:c-1']]);
    expect(byUser.stdout).toContain('end_user=u_1 tags={"org":"7"}');

    const byTag = await cli(['connections', 'list', '--tag', 'org:42']);
    expect(ids(byTag.stdout)).toEqual(['jobber:c-1', 'jobber:c-2']);
    const both = await cli([
      'connections',
      'list',
      '--tag',
      'org:42',
      '--tag',
      'plan:pro',
      '--provider',
      'jobber',
    ]);
    expect(ids(both.stdout)).toEqual(['jobber:c-2']);
    const none = await cli(['connections', 'list', '--end-user', 'u_2', '--tag', 'org:7']);
    expect([none.code, none.stdout]).toEqual([0, '']);

    const all = await cli(['connections', 'list']);
    expect(ids(all.stdout)).toEqual(['bonjoro:c-3', 'bonjoro:c-4', 'jobber:c-1', 'jobber:c-2']);
    expect(all.stdout).toMatch(/^bonjoro c-4 active expires_at=\S+ key_id=k1$/m);
  });

  it('refuses a bad filter: exit 1 with invalid_request, or 2 for a missing value or an unknown option', async () => {
    const bad = await cli(['connections', 'list', '--tag', 'NoColon']);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('invalid_request')]);
    const badUser = await cli(['connections', 'list', '--end-user', 'u 1']);
    expect(badUser.code).toBe(1);
    expect((await cli(['connections', 'list', '--tag'])).code).toBe(2);
    expect((await cli(['connections', 'list', '--owner', 'x'])).code).toBe(2);
  });
});
