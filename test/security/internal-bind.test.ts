import { loadConfig } from '../../src/config/load-config';
import { baseEnv } from '../helpers/broker-harness';
import { configProblems as problemsOf, runBrokerWith } from '../helpers/startup-refusal';

const SHORT_KEY = 'short-internal-key-1234';
const LONG_KEY = 'a-long-internal-api-key-0123456789abcdef';

/**
 * The internal listener hands out tokens: it binds loopback by default, and the broker refuses to
 * start while an INTERNAL_API_KEYS entry is short enough to guess, wherever it is bound.
 */
describe('internal listener binding', () => {
  it('binds 127.0.0.1 unless told otherwise', () => {
    const env = baseEnv(3000);
    delete env.INTERNAL_HOST;
    expect(loadConfig(env).internalHost).toBe('127.0.0.1');
  });

  it.each(['0.0.0.0', '::', '10.1.2.3', '192.168.0.4', 'broker.internal.example', '[::]'])(
    'refuses INTERNAL_HOST=%s with a short INTERNAL_API_KEYS entry, naming INTERNAL_API_KEYS and not the key',
    (host) => {
      const problems = problemsOf({ INTERNAL_HOST: host, INTERNAL_API_KEYS: SHORT_KEY });
      expect(problems.some((p) => p.startsWith('INTERNAL_API_KEYS'))).toBe(true);
      expect(problems.join('\n')).not.toContain(SHORT_KEY);
    },
  );

  it('refuses a public bind when any key of a rotation list is short', () => {
    const problems = problemsOf({ INTERNAL_HOST: '0.0.0.0', INTERNAL_API_KEYS: `${LONG_KEY},${SHORT_KEY}` });
    expect(problems.join('\n')).toContain('INTERNAL_API_KEYS');
  });

  it.each(['', ' ', ',,'])('refuses an empty INTERNAL_API_KEYS (%j)', (keys) => {
    expect(problemsOf({ INTERNAL_HOST: '0.0.0.0', INTERNAL_API_KEYS: keys }).join('\n')).toContain(
      'INTERNAL_API_KEYS',
    );
    expect(problemsOf({ INTERNAL_API_KEYS: keys }).join('\n')).toContain('INTERNAL_API_KEYS');
  });

  it('starts bound publicly when every key is at least 32 characters', () => {
    expect(
      problemsOf({
        INTERNAL_HOST: '0.0.0.0',
        INTERNAL_API_KEYS: `${LONG_KEY},${LONG_KEY.replace('a-', 'b-')}`,
      }),
    ).toEqual([]);
  });

  it.each(['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost'])(
    'refuses a short key on loopback too (%s): a bearer key is guessed the same anywhere',
    (host) => {
      expect(problemsOf({ INTERNAL_HOST: host, INTERNAL_API_KEYS: SHORT_KEY })).toEqual([
        expect.stringMatching(/^INTERNAL_API_KEYS: .*32/),
      ]);
      expect(problemsOf({ INTERNAL_HOST: host, INTERNAL_API_KEYS: LONG_KEY })).toEqual([]);
    },
  );

  it('stops the broker process before it listens, naming INTERNAL_API_KEYS, and exits non-zero', async () => {
    const outcome = await runBrokerWith({ INTERNAL_HOST: '0.0.0.0', INTERNAL_API_KEYS: SHORT_KEY });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toContain('INTERNAL_API_KEYS');
    expect(outcome.stderr).not.toContain(SHORT_KEY);
    expect(outcome.stdout).not.toContain('listening');
  }, 150_000);
});
