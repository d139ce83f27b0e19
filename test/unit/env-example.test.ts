import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { ConfigError } from '../../src/config/config-error';
import { loadConfig } from '../../src/config/load-config';

const text = readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8');

/** Every variable of the contract, and the broker's own additions in load-config.ts. */
const VARIABLES = [
  'HOST',
  'PORT',
  'INTERNAL_HOST',
  'INTERNAL_PORT',
  'PUBLIC_URL',
  'REDIS_URL',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_NAME',
  'REDIS_CLUSTER_NODES',
  'REDIS_KEY_PREFIX',
  'SESSION_SECRET',
  'TOKEN_ENCRYPTION_KEYS',
  'INTERNAL_API_KEYS',
  'ALLOWED_RETURN_URLS',
  'CONNECT_SESSION_TTL',
  'REFRESH_MARGIN',
  'PROVIDERS_FILE',
  'ALLOW_INSECURE_PROVIDER_URLS',
  'PROVIDER_TIMEOUT',
  'SHUTDOWN_TIMEOUT',
  'REFRESH_AHEAD',
  'KEEPALIVE_AFTER',
  'SWEEP_INTERVAL',
  'LOG_LEVEL',
  'RATE_LIMIT_PER_MINUTE',
  'AUTH_FAILURE_LIMIT_PER_MINUTE',
  'TRUST_PROXY',
  'WEBHOOK_URL',
  'WEBHOOK_SECRET',
];
const PROVIDER_SUFFIXES = [
  'CLIENT_ID',
  'CLIENT_SECRET',
  'SCOPES',
  'AUTHORIZATION_URL',
  'TOKEN_URL',
  'REVOCATION_URL',
  'ISSUER',
  'AUTH_MODE',
];

/** Every variable load-config.ts reads, so a new one fails this test until it is documented. */
function variablesReadByLoadConfig(): string[] {
  const source = readFileSync(join(__dirname, '..', '..', 'src', 'config', 'load-config.ts'), 'utf8');
  const names = [
    ...source.matchAll(/read\.\w+\('([A-Z][A-Z0-9_]+)'/g),
    ...source.matchAll(/env\.([A-Z][A-Z0-9_]+)/g),
  ].map((m) => m[1]!);
  return [...new Set(names)];
}

describe('.env.example', () => {
  const values = parse(text);
  const lines = text.split('\n');

  it('sets every configuration variable, each under a comment', () => {
    const readByBroker = variablesReadByLoadConfig();
    expect(readByBroker.length).toBeGreaterThan(20);
    for (const name of new Set([...VARIABLES, ...readByBroker])) {
      const index = lines.findIndex((l) => l.startsWith(`${name}=`));
      expect({ name, present: index >= 0 }).toEqual({ name, present: true });
      // The nearest non-variable line above is a comment (a block of related variables may share one).
      let above = index - 1;
      while (above >= 0 && /^[A-Z0-9_]+=/.test(lines[above]!)) above--;
      expect({ name, commented: lines[above]?.startsWith('#') }).toEqual({ name, commented: true });
    }
  });

  it('documents every per-provider variable and enables no provider by itself', () => {
    for (const suffix of PROVIDER_SUFFIXES) expect(text).toContain(`<PROVIDER>_${suffix}`);
    for (const id of ['BEXIO', 'BONJORO', 'JOBBER', 'PROCESS_STREET', 'RESPOND_IO']) {
      expect(values[`${id}_CLIENT_ID`]).toBe('');
      expect(values[`${id}_CLIENT_SECRET`]).toBe('');
    }
    // An empty <PROVIDER>_ISSUER would turn a catalogue issuer off: it must stay commented out.
    expect(Object.keys(values).filter((k) => k.endsWith('_ISSUER'))).toEqual([]);
  });

  it('is refused at start-up while its secret placeholders are not replaced', () => {
    let error: unknown;
    try {
      loadConfig(values);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^SESSION_SECRET:/m);
    expect(problems).toMatch(/^TOKEN_ENCRYPTION_KEYS:/m);
    expect(problems).not.toContain('CHANGE_ME');
  });

  it('starts once the placeholders are replaced, with the documented defaults', () => {
    const filled = {
      ...values,
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      INTERNAL_API_KEYS: randomBytes(32).toString('base64url'),
    };
    const config = loadConfig(filled);
    expect(config.port).toBe(3000);
    expect(config.internalPort).toBe(3001);
    expect(config.internalHost).toBe('127.0.0.1');
    expect(config.redisKeyPrefix).toBe('ob:');
    expect(config.connectSessionTtlSeconds).toBe(600);
    expect(config.refreshMarginSeconds).toBe(300);
    expect(config.keepaliveAfterSeconds).toBeUndefined();
    expect(config.webhookUrl).toBeUndefined();
    expect(config.trustProxy).toBeUndefined();
    expect(config.redis.sentinels).toBeUndefined();
  });
});
