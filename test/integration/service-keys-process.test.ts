import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { baseEnv, providerEnv } from '../helpers/broker-harness';
import { BrokerProcess, ensureBuilt } from '../helpers/broker-process';
import { runBrokerToExit, runCommand } from '../helpers/contract-process';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { sha256Hex, writeServiceKeysFile } from '../helpers/service-keys';
import { until } from '../helpers/until';

const CLI = join(resolve(__dirname, '../..'), 'dist', 'cli', 'main.js');

function envOf(extra: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...baseEnv(9), LOG_LEVEL: 'warn', ...extra }))
    if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Service keys and the audit log as an operator meets them, in real processes: `node dist/main.js`
 * refusing a bad SERVICE_KEYS_FILE, `keys service` making a key that a broker then takes, and
 * `audit` (with `--follow`) reading what the broker wrote.
 */
describe('service keys and the audit log, as processes', () => {
  beforeAll(() => ensureBuilt(), 180_000);

  describe('a bad SERVICE_KEYS_FILE stops start-up, naming the entry and the field', () => {
    const good = { name: 'billing', key_sha256: [sha256Hex('k')], providers: ['jobber'], actions: ['token'] };
    const cases: Array<[string, unknown, RegExp]> = [
      ['not JSON', '{"services": [', /SERVICE_KEYS_FILE: .* is not valid JSON/],
      [
        'an unknown action',
        {
          services: [
            good,
            { ...good, name: 'b2', key_sha256: [sha256Hex('x')], actions: ['token', 'steal'] },
          ],
        },
        /service 2 \(b2\): actions\[1\]: must be one of/,
      ],
      [
        'a hash that is not SHA-256 hex',
        { services: [{ ...good, key_sha256: ['abc'] }] },
        /service 1 \(billing\): key_sha256\[0\]: not 64 hex/,
      ],
      [
        'a bad name',
        { services: [{ ...good, name: 'Billing Team' }] },
        /service 1: name: must be 1-64 characters/,
      ],
      [
        'a duplicate name',
        { services: [good, { ...good, key_sha256: [sha256Hex('y')] }] },
        /service 2 \(billing\): name: duplicate/,
      ],
      [
        'an unknown field',
        { services: [{ ...good, scopes: ['x'] }] },
        /service 1 \(billing\): "scopes": unknown field/,
      ],
      [
        'an unknown provider',
        { services: [{ ...good, providers: ['jober'] }] },
        /service 1 \(billing\): providers: unknown provider "jober"/,
      ],
      [
        'no providers',
        { services: [{ ...good, providers: [] }] },
        /service 1 \(billing\): providers: must be a non-empty list/,
      ],
    ];
    it.each(cases)('%s', async (_name, content, message) => {
      const file = writeServiceKeysFile(content);
      // Redis points nowhere: the file is refused before any connection is tried.
      const run = await runBrokerToExit(envOf({ SERVICE_KEYS_FILE: file, REDIS_URL: 'redis://127.0.0.1:1' }));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain('cannot start, invalid configuration');
    });
  });

  describe('keys service, then a broker that takes the key, then audit', () => {
    let redis: TestRedis;
    let fake: FakeProvider;
    let broker: BrokerProcess;
    let key = '';
    let env: Record<string, string>;
    const followers: ChildProcess[] = [];

    beforeAll(async () => {
      redis = await TestRedis.start();
      fake = await FakeProvider.start();
      const made = await runCommand(
        process.execPath,
        [CLI, 'keys', 'service', 'reports', '--providers', 'jobber', '--actions', 'token,read'],
        envOf({}),
      );
      expect(made.code).toBe(0);
      const [keyLine, entryLine] = made.stdout.trim().split('\n');
      key = /^key: (\S+)$/.exec(keyLine!)![1]!;
      const entry = JSON.parse(entryLine!);
      expect(entry).toEqual({
        name: 'reports',
        key_sha256: [sha256Hex(key)],
        providers: ['jobber'],
        actions: ['token', 'read'],
      });
      const dir = mkdtempSync(join(tmpdir(), 'ob-keys-'));
      writeFileSync(join(dir, 'service-keys.json'), JSON.stringify({ services: [entry] }));
      env = {
        REDIS_URL: redis.url,
        SERVICE_KEYS_FILE: join(dir, 'service-keys.json'),
        ...providerEnv('jobber', fake.url),
      };
      broker = await BrokerProcess.start(env);
    }, 60_000);

    afterAll(async () => {
      for (const f of followers) f.kill('SIGKILL');
      await broker?.stop();
      await fake?.close();
      await redis?.close();
    });

    it('the printed key reads tokens within its grant, as its service, and nothing else', async () => {
      expect(
        (
          await broker.api('/internal/connections/jobber/p1', {
            method: 'PUT',
            body: { access_token: 'at-p1' },
          })
        ).status,
      ).toBe(201);
      const res = await broker.api('/internal/connections/jobber/p1/token', {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBe('at-p1');
      const refused = await broker.api('/internal/connections/jobber/p1', {
        method: 'DELETE',
        headers: { authorization: `Bearer ${key}` },
      });
      expect(refused.status).toBe(403);
    });

    it('audit prints the entries newest last, filtered, one line each', async () => {
      const run = await runCommand(process.execPath, [CLI, 'audit', '--connection', 'p1'], envOf(env));
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^\S+Z key:[0-9a-f]{8} import jobber p1 201 /);
      expect(lines[1]).toMatch(/^\S+Z reports token jobber p1 200 request_id=\S+ ip=\S+$/);
      expect(lines[2]).toMatch(/^\S+Z reports forbidden jobber p1 403 /);
      const byActor = await runCommand(
        process.execPath,
        [CLI, 'audit', '--actor', 'reports', '--provider', 'jobber'],
        envOf(env),
      );
      expect(byActor.stdout.trim().split('\n')).toEqual(lines.slice(1));
      expect(run.stdout).not.toContain('at-p1');
      expect(run.stdout).not.toContain(key);
    });

    it('connections delete from the CLI is one entry, actor cli', async () => {
      expect(
        (
          await broker.api('/internal/connections/jobber/p2', {
            method: 'PUT',
            body: { access_token: 'at-p2' },
          })
        ).status,
      ).toBe(201);
      const deleted = await runCommand(
        process.execPath,
        [CLI, 'connections', 'delete', 'jobber', 'p2'],
        envOf(env),
      );
      expect(deleted.code).toBe(0);
      const run = await runCommand(
        process.execPath,
        [CLI, 'audit', '--provider', 'jobber', '--connection', 'p2'],
        envOf(env),
      );
      const lines = run.stdout.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toMatch(/^\S+Z cli delete jobber p2 204 request_id=- ip=-$/);
    });

    it('audit --follow prints new entries as they come', async () => {
      const child = spawn(process.execPath, [CLI, 'audit', '--actor', 'reports', '--follow'], {
        env: { PATH: process.env.PATH ?? '', ...envOf(env) },
        cwd: tmpdir(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      followers.push(child);
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
      await until(() => out.split('\n').filter(Boolean).length >= 2 || undefined, 15_000);
      const res = await broker.api('/internal/connections/jobber/p1/token', {
        headers: { authorization: `Bearer ${key}`, 'x-request-id': 'followed-1' },
      });
      expect(res.status).toBe(200);
      await until(() => out.includes('request_id=followed-1') || undefined, 15_000);
      const lines = out.trim().split('\n');
      expect(lines[lines.length - 1]).toMatch(/ reports token jobber p1 200 request_id=followed-1 /);
      expect(lines.filter((l) => l.includes('followed-1'))).toHaveLength(1);
      child.kill('SIGINT');
    });
  });
});
