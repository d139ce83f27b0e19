import { ConfigError } from '../../../src/config/config-error';
import { loadConfig } from '../../../src/config/load-config';

/** Key material for TOKEN_ENCRYPTION_KEYS in these tests (32 bytes, base64). */
export const KEY_MATERIAL = Buffer.alloc(32, 9).toString('base64');

/** The smallest environment loadConfig accepts. */
export const VALID: Record<string, string> = {
  PUBLIC_URL: 'https://connect.example.com',
  SESSION_SECRET: 'session-secret-that-is-long-enough-0123',
  TOKEN_ENCRYPTION_KEYS: `k1:${KEY_MATERIAL}`,
  INTERNAL_API_KEYS: 'internal-key-one-0123456789abcdef0123',
};

/** The problems loadConfig reports for `env`, checked to be one line each, each naming its variable first. */
export function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    for (const p of problems) {
      expect(p).not.toContain('\n');
      expect(p).toMatch(/^[A-Z][A-Z0-9_]*[: ]/);
    }
    expect((error as Error).message.split('\n').length).toBe(problems.length + 1);
    return problems;
  }
  throw new Error('loadConfig accepted the configuration');
}
