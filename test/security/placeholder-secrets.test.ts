import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { configProblems as problemsOf, runBrokerWith } from '../helpers/startup-refusal';

const EXAMPLE = parse(readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8'));
const LONG_KEY = 'a-long-internal-api-key-0123456789abcdef';
const SHORT_KEY = 'short-internal-key-1234';

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
    const outcome = await runBrokerWith({
      INTERNAL_HOST: '127.0.0.1',
      ...Object.fromEntries(secretsShipped),
    });
    expect(outcome.code).not.toBe(0);
    for (const [name] of secretsShipped) expect(outcome.stderr).toMatch(new RegExp(`${name}: .*placeholder`));
    expect(outcome.stderr).not.toContain('CHANGE_ME');
    expect(outcome.stdout).not.toContain('listening');
  }, 150_000);

  it('stops the broker process on loopback with a short internal key', async () => {
    const outcome = await runBrokerWith({ INTERNAL_HOST: '127.0.0.1', INTERNAL_API_KEYS: SHORT_KEY });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toMatch(/INTERNAL_API_KEYS: .*32/);
    expect(outcome.stderr).not.toContain(SHORT_KEY);
  }, 150_000);
});
