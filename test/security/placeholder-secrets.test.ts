import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';
import { ConfigError } from '../../src/config/config-error';
import { loadConfig } from '../../src/config/load-config';
import { baseEnv } from '../helpers/broker-harness';
import { ensureBuilt } from '../helpers/broker-process';

const EXAMPLE = parse(readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8'));
const LONG_KEY = 'a-long-internal-api-key-0123456789abcdef';
const SHORT_KEY = 'short-internal-key-1234';

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig({ ...baseEnv(3000), ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

/**
 * A copy of `.env.example` whose secrets were not replaced must not start anywhere: the published
 * placeholder would otherwise be a key everyone knows. Internal keys are bearer secrets whatever
 * address the listener binds, so each is at least 32 characters on loopback too.
 */
describe('placeholder secrets and short internal keys stop start-up', () => {
  const secretsShipped = Object.entries(EXAMPLE).filter(
    ([name, value]) => value !== '' && /SECRET|KEYS?$/.test(name) && name !== 'REDIS_KEY_PREFIX',
  );

  it('finds every secret .env.example ships', () => {
    expect(secretsShipped.map(([name]) => name).sort()).toEqual(
      ['INTERNAL_API_KEYS', 'SESSION_SECRET', 'TOKEN_ENCRYPTION_KEYS'].sort(),
    );
  });

  it.each(['127.0.0.1', '0.0.0.0', 'localhost'])(
    'refuses each placeholder of .env.example on INTERNAL_HOST=%s, one line each, naming the variable',
    (host) => {
      for (const [name, value] of secretsShipped) {
        const problems = problemsOf({ INTERNAL_HOST: host, [name]: value });
        expect(problems).toEqual([expect.stringMatching(new RegExp(`^${name}: .*placeholder`))]);
      }
    },
  );

  it.each([
    ['SESSION_SECRET', 'CHANGE_ME'],
    ['SESSION_SECRET', `${'s'.repeat(40)},change-me`],
    ['INTERNAL_API_KEYS', `${LONG_KEY},CHANGE_ME`],
    ['INTERNAL_API_KEYS', 'changeme'],
    ['TOKEN_ENCRYPTION_KEYS', 'k1:CHANGE_ME'],
    ['WEBHOOK_SECRET', 'CHANGE_ME'],
    ['JOBBER_CLIENT_SECRET', 'CHANGE_ME'],
  ])('refuses %s=%s as a placeholder', (name, value) => {
    const extra = name === 'WEBHOOK_SECRET' ? { WEBHOOK_URL: 'https://hooks.example.com/x' } : {};
    const problems = problemsOf({ ...extra, [name]: value });
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^${name}: .*placeholder`))]);
  });

  it.each(['127.0.0.1', '::1', 'localhost', '0.0.0.0'])(
    'refuses an INTERNAL_API_KEYS key under 32 characters on INTERNAL_HOST=%s, without printing it',
    (host) => {
      const problems = problemsOf({ INTERNAL_HOST: host, INTERNAL_API_KEYS: `${LONG_KEY},${SHORT_KEY}` });
      expect(problems).toEqual([expect.stringMatching(/^INTERNAL_API_KEYS: entry 2 .*32/)]);
      expect(problems.join('\n')).not.toContain(SHORT_KEY);
    },
  );

  it('starts with real secrets of the right length', () => {
    expect(problemsOf({ INTERNAL_API_KEYS: LONG_KEY })).toEqual([]);
  });

  it('stops the broker process with the .env.example secrets, naming each, printing none, exit non-zero', async () => {
    await ensureBuilt();
    const main = resolve(__dirname, '../../dist/main.js');
    const env = {
      PATH: process.env.PATH,
      ...baseEnv(1),
      REDIS_URL: 'redis://127.0.0.1:1',
      PORT: '0',
      INTERNAL_PORT: '0',
      INTERNAL_HOST: '127.0.0.1',
      ...Object.fromEntries(secretsShipped),
    };
    const outcome = await new Promise<{ code: number | null; stderr: string; stdout: string }>((done) => {
      execFile(process.execPath, [main], { env, cwd: '/', timeout: 20_000 }, (error, stdout, stderr) => {
        done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr, stdout });
      });
    });
    expect(outcome.code).not.toBe(0);
    for (const [name] of secretsShipped) expect(outcome.stderr).toMatch(new RegExp(`${name}: .*placeholder`));
    expect(outcome.stderr).not.toContain('CHANGE_ME');
    expect(outcome.stdout).not.toContain('listening');
  }, 150_000);

  it('stops the broker process on loopback with a short internal key', async () => {
    await ensureBuilt();
    const main = resolve(__dirname, '../../dist/main.js');
    const env = {
      PATH: process.env.PATH,
      ...baseEnv(1),
      REDIS_URL: 'redis://127.0.0.1:1',
      PORT: '0',
      INTERNAL_PORT: '0',
      INTERNAL_HOST: '127.0.0.1',
      INTERNAL_API_KEYS: SHORT_KEY,
    };
    const outcome = await new Promise<{ code: number | null; stderr: string }>((done) => {
      execFile(process.execPath, [main], { env, cwd: '/', timeout: 20_000 }, (error, _stdout, stderr) => {
        done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr });
      });
    });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toMatch(/INTERNAL_API_KEYS: .*32/);
    expect(outcome.stderr).not.toContain(SHORT_KEY);
  }, 150_000);
});
