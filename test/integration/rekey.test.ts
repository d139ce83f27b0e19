import { ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { baseEnv, providerEnv, startTestBroker, testKey } from '../helpers/broker-harness';
import { useRedisAndFake } from '../helpers/redis-fixture';

/**
 * Online key rotation (docs/operations.md, key rotation): put the new key first, run `keys rekey` while
 * brokers serve, check `keys status`, remove the old key. The CLI runs as the operator would run
 * it: `node dist/cli/main.js` in its own process, with the broker's environment.
 */
const CLI = join(resolve(__dirname, '../..'), 'dist', 'cli', 'main.js');
const K1 = `k1:${Buffer.alloc(32, 7).toString('base64')}`; // the harness's default ring
const K2 = `k2:${testKey()}`;

interface CliRun {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], env: Record<string, string | undefined>): CliRun {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries({ PATH: process.env.PATH, ...baseEnv(9), ...env }))
    if (v !== undefined) full[k] = v;
  // cwd outside the project: no .env there to leak in.
  const child = spawn(process.execPath, [CLI, ...args], {
    env: full,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
  };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (run.stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (run.stderr += c));
  return run;
}

async function cliDone(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = cli(args, env);
  const { code } = await run.exit;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

/** key_id of each connection, straight from Redis (what `keys status` counts, without the CLI). */
async function keyIds(client: Redis, prefix: string, members: string[]): Promise<Map<string, number>> {
  const pipeline = client.pipeline();
  for (const m of members) pipeline.hget(`${prefix}{${m}}:conn`, 'key_id');
  const counts = new Map<string, number>();
  for (const [, kid] of (await pipeline.exec())!) counts.set(String(kid), (counts.get(String(kid)) ?? 0) + 1);
  return counts;
}

describe('keys rekey: online key rotation', () => {
  const t = useRedisAndFake({ rotateRefreshTokens: true }, { build: true });

  /** Seeds `count` connections under k1 through the service a connect or import uses. */
  async function seed(prefix: string, count: number): Promise<string[]> {
    const seeder = await startTestBroker({
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: prefix,
      ...providerEnv('bonjoro', t.fake.url),
    });
    const provider = seeder.broker.registry.get('bonjoro')!;
    const ids = Array.from({ length: count }, (_, i) => `rk-${i}`);
    try {
      for (let i = 0; i < count; i += 200) {
        await Promise.all(
          ids.slice(i, i + 200).map((id) => {
            const rt = `rt-${prefix}${id}`;
            t.fake.liveRefreshTokens.add(rt);
            return seeder.broker.connections.saveTokens(
              provider,
              id,
              {
                access_token: `at-${prefix}${id}`,
                refresh_token: rt,
                token_type: 'Bearer',
                expires_at: Date.now() + 3_600_000,
              },
              [],
            );
          }),
        );
      }
    } finally {
      await seeder.close();
    }
    return ids;
  }

  it('re-seals every connection under k2 while the token API is hammered: no read fails, no refresh is undone, k1 can go', async () => {
    const prefix = 'live:';
    const ids = await seed(prefix, 1000);
    expect(
      await keyIds(
        t.client,
        prefix,
        ids.map((id) => `bonjoro:${id}`),
      ),
    ).toEqual(new Map([['k1', 1000]]));

    const env = {
      REDIS_URL: t.redis.url,
      REDIS_KEY_PREFIX: prefix,
      TOKEN_ENCRYPTION_KEYS: `${K2},${K1}`,
      ...providerEnv('bonjoro', t.fake.url),
    };
    const broker = await startTestBroker(env);
    let stop = false;
    const failures: string[] = [];
    let reads = 0;
    // Forced refreshes on the first 50 connections, one at a time each: the last token each got.
    const lastForced = new Map<string, string>();
    const forcedAt: number[] = [];
    let cliStartedAt = 0;
    let cliExitedAt = 0;
    try {
      const readers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          const res = await broker.api(`/internal/connections/bonjoro/${id}/token`);
          reads += 1;
          if (res.status !== 200) failures.push(`read ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      });
      const refresher = (async () => {
        for (let i = 0; !stop; i = (i + 1) % 50) {
          const id = ids[i]!;
          const res = await broker.api(`/internal/connections/bonjoro/${id}/token?force_refresh=true`);
          if (res.status !== 200) failures.push(`force ${id}: ${res.status} ${JSON.stringify(res.body)}`);
          else {
            lastForced.set(id, res.body.access_token);
            forcedAt.push(Date.now());
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 300));

      cliStartedAt = Date.now();
      const rekey = await cliDone(['keys', 'rekey'], env);
      cliExitedAt = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all([...readers, refresher]);

      expect(rekey.stderr).not.toMatch(/^failed /m);
      expect(rekey.code).toBe(0);
      expect(rekey.stdout).toMatch(/connections: 1000\b/);
      expect(rekey.stdout).toMatch(/still under an old key: 0\b/);
      expect(failures).toEqual([]);
      expect(reads).toBeGreaterThan(0);
      // Refreshes did run while the rekey ran.
      expect(forcedAt.filter((t) => t > cliStartedAt && t < cliExitedAt).length).toBeGreaterThan(0);

      const status = await cliDone(['keys', 'status'], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toBe('k2 1000\n');

      // No refresh was undone: each connection still holds the last token a refresh gave, and its
      // rotated refresh token (the fake kills the previous one) still works.
      for (const [id, token] of lastForced) {
        const res = await broker.api(`/internal/connections/bonjoro/${id}/token?min_validity=0`);
        expect(res.body.access_token).toBe(token);
      }
    } finally {
      stop = true;
      await broker.close();
    }

    // k1 leaves the ring: everything still opens, and refreshes still work.
    const withoutK1 = await startTestBroker({ ...env, TOKEN_ENCRYPTION_KEYS: K2 });
    try {
      const answers = await Promise.all(
        ids.map((id) => withoutK1.api(`/internal/connections/bonjoro/${id}/token?min_validity=0`)),
      );
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      for (const [i, a] of answers.entries()) {
        const id = ids[i]!;
        expect(a.body.access_token).toBe(lastForced.get(id) ?? `at-${prefix}${id}`);
      }
      for (const id of [...lastForced.keys()].slice(0, 10)) {
        const forced = await withoutK1.api(`/internal/connections/bonjoro/${id}/token?force_refresh=true`);
        expect(forced.status).toBe(200);
      }
      const meta = await withoutK1.api(`/internal/connections/bonjoro/${ids[999]}`);
      expect(meta.body.key_id).toBe('k2');
    } finally {
      await withoutK1.close();
    }
  }, 120_000);

  it.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)(
    'resumes a rekey interrupted by %s midway and completes it',
    async (signal) => {
      const prefix = `cut-${signal.toLowerCase()}:`;
      const ids = await seed(prefix, 2000);
      const members = ids.map((id) => `bonjoro:${id}`);
      const env = {
        REDIS_URL: t.redis.url,
        REDIS_KEY_PREFIX: prefix,
        TOKEN_ENCRYPTION_KEYS: `${K2},${K1}`,
        ...providerEnv('bonjoro', t.fake.url),
      };

      const first = cli(['keys', 'rekey'], env);
      let exited = false;
      void first.exit.then(() => (exited = true));
      // Interrupt once a tenth is done.
      for (;;) {
        if (exited)
          throw new Error(`rekey ended before it could be interrupted: ${first.stdout}${first.stderr}`);
        if (((await keyIds(t.client, prefix, members)).get('k2') ?? 0) >= 200) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      first.child.kill(signal);
      const ended = await first.exit;
      const locks = (await Promise.all(members.map((m) => t.client.exists(`${prefix}{${m}}:lock`)))).reduce(
        (a, b) => a + b,
        0,
      );
      if (signal !== 'SIGKILL') {
        // Ctrl-C, or a stop by a process manager: the re-seals under way finish and release their
        // locks; exit 128 + the signal's number (130, 143), nothing left held.
        expect(ended.code).toBe(signal === 'SIGINT' ? 130 : 143);
        expect(first.stderr).toMatch(/interrupted/);
        expect(locks).toBe(0);
      } else {
        // A crash leaves the locks of the re-seals under way until their TTL (10 s), unless it
        // fell between two pages. Plant one as such a crashed holder would leave it, so the
        // resume surely meets a held lock and must wait it out.
        expect(ended.signal).toBe('SIGKILL');
        let planted = 0;
        for (const m of members) {
          if ((await t.client.hget(`${prefix}{${m}}:conn`, 'key_id')) !== 'k1') continue;
          if ((await t.client.set(`${prefix}{${m}}:lock`, 'crashed-holder', 'PX', 8000, 'NX')) === 'OK')
            planted += 1;
          if (planted > 0) break;
        }
        expect(planted).toBe(1);
      }

      const midway = await keyIds(t.client, prefix, members);
      expect(midway.get('k1') ?? 0).toBeGreaterThan(0);
      expect(midway.get('k2') ?? 0).toBeGreaterThan(0);

      const status = await cliDone(['keys', 'status'], env);
      expect(status.stdout).toBe(`k1 ${midway.get('k1')}\nk2 ${midway.get('k2')}\n`);

      // `keys rotate` is the same command.
      const resumed = await cliDone(['keys', signal === 'SIGINT' ? 'rotate' : 'rekey'], env);
      expect(resumed.stderr).not.toMatch(/^failed /m);
      expect(resumed.code).toBe(0);
      expect(resumed.stdout).toMatch(/still under an old key: 0\b/);
      expect(await keyIds(t.client, prefix, members)).toEqual(new Map([['k2', 2000]]));
      expect((await cliDone(['keys', 'status'], env)).stdout).toBe('k2 2000\n');
    },
    120_000,
  );
});
