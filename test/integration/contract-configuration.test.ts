import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseEnv, providerEnv } from '../helpers/broker-harness';
import { BrokerProcess } from '../helpers/broker-process';
import { connectionCounter, runBrokerToExit } from '../helpers/contract-process';
import { freePort } from '../helpers/free-port';
import { CONTRACT_DEFAULTS, useContractSuite } from '../helpers/contract-suite';

/**
 * Start-up configuration of the built broker, from outside (docs/configuration.md): bad
 * configuration stops it before it connects anywhere, one line per problem naming the variable and
 * never a secret; a .env file in its working directory is read, the real environment winning.
 */
describe('contract, from outside on node dist/main.js: start-up configuration', () => {
  const suite = useContractSuite(0);

  describe('configuration', () => {
    const goodSecret = 'a-session-secret-that-is-long-enough-0123456789';
    const goodKeys = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

    it('stops start-up on bad configuration before connecting anywhere, one line per problem naming the variable, never a secret, exit non-zero', async () => {
      const redisStandIn = await connectionCounter();
      const secrets = {
        session: 'too-short-session-SECRET-1',
        key: Buffer.from('only-sixteen-byt').toString('base64'),
        redisPassword: 'redis-PASSWORD-never-printed',
        clientSecret: 'jobber-client-SECRET-never-printed',
      };
      try {
        const run = await runBrokerToExit({
          PUBLIC_URL: 'connect.example.com',
          REDIS_URL: `redis://:${secrets.redisPassword}@127.0.0.1:${redisStandIn.port}`,
          SESSION_SECRET: secrets.session,
          TOKEN_ENCRYPTION_KEYS: `k1:${secrets.key}`,
          CONNECT_SESSION_TTL: '0',
          JOBBER_CLIENT_ID: 'jobber-client',
          JOBBER_CLIENT_SECRET: secrets.clientSecret,
        });
        expect(run.code).not.toBe(0);
        expect(run.code).not.toBeNull();
        const lines = run.stderr.split('\n');
        const problems: Array<[string, RegExp]> = [
          ['PUBLIC_URL', /not a url/i],
          ['SESSION_SECRET', /short|at least 32/i],
          ['TOKEN_ENCRYPTION_KEYS', /base64.*32 bytes/i],
          ['INTERNAL_API_KEYS', /missing/i],
          ['CONNECT_SESSION_TTL', /1.*86400/],
        ];
        for (const [variable, what] of problems) {
          const named = lines.filter((l) => new RegExp(`\\b${variable}\\b`).test(l));
          expect({ variable, lines: named.length }).toEqual({ variable, lines: 1 });
          expect(named[0]).toMatch(what);
        }
        const output = run.stdout + run.stderr;
        for (const [name, value] of Object.entries(secrets))
          expect({ name, printed: output.includes(value) }).toEqual({ name, printed: false });
        expect(redisStandIn.count()).toBe(0);
      } finally {
        await redisStandIn.close();
      }
    });

    it('stops start-up on a bad provider endpoint and a second SESSION_SECRET that is too short, naming each variable', async () => {
      const redisStandIn = await connectionCounter();
      try {
        const providerRun = await runBrokerToExit({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: `redis://127.0.0.1:${redisStandIn.port}`,
          ...providerEnv('jobber', suite.fake.url, { JOBBER_TOKEN_URL: 'not a url at all' }),
          ...providerEnv('process-street', suite.fake.url, {
            PROCESS_STREET_AUTHORIZATION_URL: 'http://auth.example.test/authorize',
          }),
        });
        expect(providerRun.code).not.toBe(0);
        expect(providerRun.stderr).toMatch(/JOBBER_TOKEN_URL/);
        expect(providerRun.stderr).toMatch(/PROCESS_STREET_AUTHORIZATION_URL/);
        expect(providerRun.stdout + providerRun.stderr).not.toContain('jobber-secret');

        const secondShort = 'short-SECRET-2';
        const rotationRun = await runBrokerToExit({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: `redis://127.0.0.1:${redisStandIn.port}`,
          SESSION_SECRET: `${goodSecret},${secondShort}`,
          TOKEN_ENCRYPTION_KEYS: `${goodKeys},k2:not-base64-!!`,
          CONNECT_SESSION_TTL: '86401',
        });
        expect(rotationRun.code).not.toBe(0);
        const lines = rotationRun.stderr.split('\n');
        expect(lines.filter((l) => /\bSESSION_SECRET\b/.test(l))).toHaveLength(1);
        expect(lines.filter((l) => /\bTOKEN_ENCRYPTION_KEYS\b/.test(l))).toHaveLength(1);
        expect(lines.filter((l) => /\bCONNECT_SESSION_TTL\b/.test(l))).toHaveLength(1);
        for (const value of [goodSecret, secondShort, goodKeys.slice(3), 'not-base64-!!']) {
          expect(rotationRun.stdout + rotationRun.stderr).not.toContain(value);
        }
        expect(redisStandIn.count()).toBe(0);
      } finally {
        await redisStandIn.close();
      }
    });

    it('stops start-up on a bad PROVIDERS_FILE with one line per problem naming the entry and the field, whatever else is wrong in it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ob-providers-'));
      try {
        const env = (file: string): Record<string, string> => ({
          ...(baseEnv(1) as Record<string, string>),
          REDIS_URL: 'redis://127.0.0.1:9',
          PROVIDERS_FILE: join(dir, file),
        });
        writeFileSync(
          join(dir, 'bad.json'),
          JSON.stringify({
            providers: [
              {
                id: 'acme',
                authorization_url: 'https://acme.example/a',
                token_url: 'not a url',
                colour: 'red',
              },
              {
                id: 'acme',
                authorization_url: 'https://acme.example/a',
                token_url: 'https://acme.example/t',
              },
              { id: 'beta', extends: 'nope' },
            ],
          }),
        );
        writeFileSync(join(dir, 'broken.json'), '{"providers": [');
        const bad = await runBrokerToExit(env('bad.json'));
        expect(bad.code).not.toBe(0);
        const lines = bad.stderr.split('\n').filter((l) => l.includes('PROVIDERS_FILE'));
        const expected: RegExp[] = [
          /"acme".*entry 1.*"token_url"/,
          /"acme".*entry 1.*unknown field "colour"/,
          /"acme".*entry 2.*"id".*duplicate/,
          /"beta".*"extends"/,
        ];
        for (const line of expected)
          expect({ line: String(line), found: lines.filter((l) => line.test(l)).length }).toEqual({
            line: String(line),
            found: 1,
          });
        expect(lines).toHaveLength(expected.length);
        expect(bad.stderr).not.toMatch(/\n\s+at /);

        for (const [file, what] of [
          ['broken.json', /not valid JSON/],
          ['missing.json', /cannot be read/],
        ] as const) {
          const run = await runBrokerToExit(env(file));
          expect(run.code).not.toBe(0);
          expect(run.stderr).toMatch(new RegExp(`PROVIDERS_FILE.*${what.source}`));
          expect(run.stderr).not.toMatch(/\n\s+at /);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads a .env file in its working directory, the real environment winning over it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ob-dotenv-'));
      try {
        const port = await freePort();
        writeFileSync(
          join(dir, '.env'),
          [
            `SESSION_SECRET=${goodSecret}`,
            `TOKEN_ENCRYPTION_KEYS=${goodKeys}`,
            'CONNECT_SESSION_TTL=77',
            'PUBLIC_URL=https://from-dotenv.example.test',
            `REDIS_URL=${suite.redis.url}`,
            '',
          ].join('\n'),
        );
        const broker = await BrokerProcess.start(
          {
            ...CONTRACT_DEFAULTS,
            SESSION_SECRET: undefined,
            TOKEN_ENCRYPTION_KEYS: undefined,
            REDIS_URL: undefined,
            PUBLIC_URL: `http://127.0.0.1:${port}`,
            ...providerEnv('jobber', suite.fake.url),
          },
          { publicPort: port, cwd: dir },
        );
        suite.others.push(broker);
        const before = Date.now();
        const res = await broker.api('/internal/connect-sessions', {
          method: 'POST',
          body: { provider: 'jobber', connection_id: 'dotenv-1' },
        });
        expect(res.status).toBe(201);
        expect(res.body.url.startsWith(`http://127.0.0.1:${port}/auth/jobber?session=`)).toBe(true);
        const ttl = Date.parse(res.body.expires_at) - before;
        expect(ttl).toBeGreaterThan(76_000);
        expect(ttl).toBeLessThan(79_000);
        await broker.stop('SIGKILL');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
