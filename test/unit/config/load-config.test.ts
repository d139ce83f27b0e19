import { loadConfig } from '../../../src/config/load-config';
import { ConfigError } from '../../../src/config/config-error';
import { KEY_MATERIAL, VALID, problemsOf } from './config-fixtures';

describe('loadConfig: the environment, validated once', () => {
  it('accepts the minimal configuration and fills in the contract defaults', () => {
    const config = loadConfig(VALID);
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 3000,
      internalHost: '127.0.0.1',
      internalPort: 3001,
      publicUrl: 'https://connect.example.com',
      redis: { url: 'redis://127.0.0.1:6379' },
      redisKeyPrefix: 'ob:',
      sessionSecrets: [VALID.SESSION_SECRET],
      internalApiKeys: [VALID.INTERNAL_API_KEYS],
      allowedReturnUrls: [],
      connectSessionTtlSeconds: 600,
      refreshMarginSeconds: 300,
      providerTimeoutSeconds: 10,
      shutdownTimeoutSeconds: 10,
      refreshAhead: true,
      keepaliveAfterSeconds: undefined,
      sweepIntervalSeconds: 15,
      logLevel: 'info',
      allowInsecureProviderUrls: false,
    });
    expect(config.encryptionKeys).toEqual([{ id: 'k1', key: Buffer.alloc(32, 9) }]);
  });

  it('splits the comma separated lists: several internal keys, session secrets and encryption keys', () => {
    const config = loadConfig({
      ...VALID,
      INTERNAL_API_KEYS: `${'a'.repeat(32)}, ${'b'.repeat(32)},${'c'.repeat(32)}`,
      SESSION_SECRET: `${'a'.repeat(32)},${'b'.repeat(40)}`,
      TOKEN_ENCRYPTION_KEYS: `new:${Buffer.alloc(32, 1).toString('base64')}, old:${KEY_MATERIAL}`,
      ALLOWED_RETURN_URLS: 'https://app.example.com/integrations/, https://other.example.com',
    });
    expect(config.internalApiKeys).toEqual(['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)]);
    expect(config.sessionSecrets).toEqual(['a'.repeat(32), 'b'.repeat(40)]);
    expect(config.encryptionKeys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(config.allowedReturnUrls).toEqual([
      'https://app.example.com/integrations',
      'https://other.example.com',
    ]);
  });

  it.each(['PUBLIC_URL', 'SESSION_SECRET', 'TOKEN_ENCRYPTION_KEYS', 'INTERNAL_API_KEYS'])(
    'names %s when it is missing',
    (name) => {
      const problems = problemsOf({ ...VALID, [name]: undefined });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${name}: missing`));
    },
  );

  it('counts a blank value as missing', () => {
    expect(problemsOf({ ...VALID, SESSION_SECRET: '   ' })).toEqual([
      expect.stringMatching(/^SESSION_SECRET: missing/),
    ]);
  });

  it('refuses a SESSION_SECRET shorter than 32 characters without printing it', () => {
    const secret = 'short-but-secret-31-characters!';
    expect(secret).toHaveLength(31);
    const problems = problemsOf({ ...VALID, SESSION_SECRET: secret });
    expect(problems).toEqual([expect.stringMatching(/^SESSION_SECRET: .*too short.*32/)]);
    expect(problems.join('\n')).not.toContain(secret);
    expect(loadConfig({ ...VALID, SESSION_SECRET: `${secret}x` }).sessionSecrets).toEqual([`${secret}x`]);
  });

  it('checks every session secret of a rotation list', () => {
    const problems = problemsOf({ ...VALID, SESSION_SECRET: `${'a'.repeat(32)},tiny-old-secret` });
    expect(problems).toEqual([expect.stringMatching(/^SESSION_SECRET: entry 2 .*too short/)]);
    expect(problems[0]).not.toContain('tiny-old-secret');
  });

  it.each([
    ['16 bytes', `k1:${Buffer.alloc(16, 3).toString('base64')}`],
    ['33 bytes', `k1:${Buffer.alloc(33, 3).toString('base64')}`],
    ['not base64 at all', 'k1:this is not base64!!'],
    ['base64url alphabet', `k1:${Buffer.alloc(32, 0xfb).toString('base64url')}`],
    ['hex of 32 bytes', `k1:${Buffer.alloc(32, 0xab).toString('hex')}`],
  ])('refuses TOKEN_ENCRYPTION_KEYS holding %s, without printing the key material', (_name, value) => {
    const problems = problemsOf({ ...VALID, TOKEN_ENCRYPTION_KEYS: value });
    expect(problems).toEqual([expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS: .*not base64 of 32 bytes/)]);
    expect(problems[0]).not.toContain(value.slice(3));
  });

  it.each([
    ['no key id', KEY_MATERIAL],
    ['an empty key id', `:${KEY_MATERIAL}`],
    ['a key id with spaces', `my key:${KEY_MATERIAL}`],
  ])('refuses a TOKEN_ENCRYPTION_KEYS entry with %s, without printing it', (_name, value) => {
    const problems = problemsOf({ ...VALID, TOKEN_ENCRYPTION_KEYS: value });
    expect(problems).toEqual([expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS: .*key id/)]);
    expect(problems[0]).not.toContain(KEY_MATERIAL);
  });

  it('refuses a duplicate key id in the ring', () => {
    const problems = problemsOf({
      ...VALID,
      TOKEN_ENCRYPTION_KEYS: `k1:${KEY_MATERIAL},k1:${Buffer.alloc(32, 2).toString('base64')}`,
    });
    expect(problems).toEqual([expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS: .*duplicate/)]);
  });

  it.each(['0', '86401', '-5', '600.5', 'ten minutes'])(
    'refuses CONNECT_SESSION_TTL=%s (an integer 1-86400)',
    (value) => {
      expect(problemsOf({ ...VALID, CONNECT_SESSION_TTL: value })).toEqual([
        expect.stringMatching(/^CONNECT_SESSION_TTL: .*1 to 86400/),
      ]);
    },
  );

  it.each([
    ['1', 1],
    ['86400', 86400],
    ['', 600],
  ])('accepts CONNECT_SESSION_TTL=%p', (value, expected) => {
    expect(loadConfig({ ...VALID, CONNECT_SESSION_TTL: value }).connectSessionTtlSeconds).toBe(expected);
  });

  it.each([
    ['PUBLIC_URL', 'not a url'],
    ['PUBLIC_URL', 'ftp://connect.example.com'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['PORT', '70000'],
    ['INTERNAL_PORT', 'x'],
    ['REFRESH_MARGIN', '-1'],
    ['PROVIDER_TIMEOUT', '0'],
    ['PROVIDER_TIMEOUT', 'soon'],
    ['SHUTDOWN_TIMEOUT', '-1'],
    ['REFRESH_AHEAD', 'maybe'],
    ['ALLOW_INSECURE_PROVIDER_URLS', 'sure'],
    ['KEEPALIVE_AFTER', '1.5'],
    ['SWEEP_INTERVAL', '0'],
    ['LOG_LEVEL', 'loud'],
    ['ALLOWED_RETURN_URLS', 'app.example.com'],
    ['ALLOWED_RETURN_URLS', 'javascript:alert(1)'],
    ['ALLOWED_RETURN_URLS', 'https://app.example.com/x?y=1'],
    ['REDIS_SENTINELS', 'host-without-port'],
  ])('names %s when its value %p is wrong', (name, value) => {
    const problems = problemsOf({
      ...VALID,
      [name]: value,
      ...(name === 'REDIS_SENTINELS' ? { REDIS_SENTINEL_NAME: 'mymaster' } : {}),
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${name}:`)).toBe(true);
  });

  it('accepts a fractional PROVIDER_TIMEOUT', () => {
    expect(loadConfig({ ...VALID, PROVIDER_TIMEOUT: '0.5' }).providerTimeoutSeconds).toBe(0.5);
  });

  it('never prints a password from REDIS_URL', () => {
    for (const url of [
      'http://user:hunter2-password@redis.example:6379',
      'redis://user:hunter2-password@[bad',
    ]) {
      const problems = problemsOf({ ...VALID, REDIS_URL: url });
      expect(problems).toEqual([expect.stringMatching(/^REDIS_URL: /)]);
      expect(problems[0]).not.toContain('hunter2-password');
    }
  });

  it('needs REDIS_SENTINEL_NAME with REDIS_SENTINELS', () => {
    expect(problemsOf({ ...VALID, REDIS_SENTINELS: 'a:26379,b:26379' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINEL_NAME: missing/),
    ]);
  });

  it('needs long internal keys when the internal listener is not on loopback, without printing them', () => {
    const problems = problemsOf({
      ...VALID,
      INTERNAL_HOST: '0.0.0.0',
      INTERNAL_API_KEYS: 'short-internal-key',
    });
    expect(problems).toEqual([expect.stringMatching(/^INTERNAL_API_KEYS: .*32/)]);
    expect(problems[0]).not.toContain('short-internal-key');
  });

  it('reports every problem at once, one line each, and no secret among them', () => {
    const secrets = ['tiny-session', 'k1:c2hvcnQ=', 'hunter2-password'];
    let message = '';
    try {
      loadConfig({
        SESSION_SECRET: 'tiny-session',
        TOKEN_ENCRYPTION_KEYS: 'k1:c2hvcnQ=',
        REDIS_URL: 'http://u:hunter2-password@h:1',
        CONNECT_SESSION_TTL: '0',
        WEBHOOK_URL: 'https://hooks.example.com/x',
        WEBHOOK_SECRET: 'short-webhook-secret',
      });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      const named = problems.map((p) => p.split(':')[0]);
      expect(named.sort()).toEqual(
        [
          'CONNECT_SESSION_TTL',
          'INTERNAL_API_KEYS',
          'PUBLIC_URL',
          'REDIS_URL',
          'SESSION_SECRET',
          'TOKEN_ENCRYPTION_KEYS',
          'WEBHOOK_SECRET',
        ].sort(),
      );
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    for (const secret of [...secrets, 'c2hvcnQ=', 'short-webhook-secret'])
      expect(message).not.toContain(secret);
  });
});
