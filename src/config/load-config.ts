import { Config, EncryptionKey } from './config';
import { ConfigError } from './config-error';
import { isPlaceholder } from './placeholder';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the environment into one typed `Config`. Every problem is collected so an
 * operator sees them all at once; messages name the variable and what is wrong, never the value
 * of a secret.
 */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const publicUrl = read.url('PUBLIC_URL', { required: true, httpOnly: true })?.replace(/\/+$/, '') ?? '';
  const redisUrl = read.url('REDIS_URL', { schemes: ['redis:', 'rediss:'] }) ?? 'redis://127.0.0.1:6379';
  const sentinels = read.hostList('REDIS_SENTINELS');
  const sentinelName = read.string('REDIS_SENTINEL_NAME');
  if (sentinels && !sentinelName)
    problems.push('REDIS_SENTINEL_NAME: missing (required with REDIS_SENTINELS)');
  const clusterNodes = read.hostList('REDIS_CLUSTER_NODES');

  const config: Config = {
    host: read.string('HOST') ?? '0.0.0.0',
    port: read.integer('PORT', { min: 0, max: 65535 }) ?? 3000,
    internalHost: read.string('INTERNAL_HOST') ?? '127.0.0.1',
    internalPort: read.integer('INTERNAL_PORT', { min: 0, max: 65535 }) ?? 3001,
    publicUrl,
    redis: { url: redisUrl, sentinels, sentinelName, clusterNodes },
    redisKeyPrefix: read.string('REDIS_KEY_PREFIX', { allowEmpty: true }) ?? 'ob:',
    sessionSecrets: read.secretList('SESSION_SECRET', 32),
    encryptionKeys: readKeyRing(env, problems),
    // Bearer keys that hand out tokens: long enough not to be guessed, whatever INTERNAL_HOST is.
    internalApiKeys: read.secretList('INTERNAL_API_KEYS', 32),
    allowedReturnUrls: readAllowedReturnUrls(env, problems),
    connectSessionTtlSeconds: read.integer('CONNECT_SESSION_TTL', { min: 1, max: 86400 }) ?? 600,
    refreshMarginSeconds: read.integer('REFRESH_MARGIN', { min: 0, max: 86400 }) ?? 300,
    providersFile: read.string('PROVIDERS_FILE'),
    allowInsecureProviderUrls: read.boolean('ALLOW_INSECURE_PROVIDER_URLS') ?? false,
    providerTimeoutSeconds: read.number('PROVIDER_TIMEOUT', { min: 0.05, max: 300 }) ?? 10,
    circuitThreshold: read.integer('PROVIDER_CIRCUIT_THRESHOLD', { min: 1, max: 1000 }) ?? 5,
    circuitOpenSeconds: read.number('PROVIDER_CIRCUIT_OPEN', { min: 0.1, max: 3600 }) ?? 30,
    shutdownTimeoutSeconds: read.number('SHUTDOWN_TIMEOUT', { min: 0, max: 3600 }) ?? 10,
    refreshAhead: read.boolean('REFRESH_AHEAD') ?? true,
    keepaliveAfterSeconds: read.integer('KEEPALIVE_AFTER', { min: 0, max: 10 * 365 * 86400 }),
    sweepIntervalSeconds: read.number('SWEEP_INTERVAL', { min: 0.1, max: 86400 }) ?? 15,
    ...readSweepConcurrency(read, problems),
    logLevel:
      read.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) ?? 'info',
    webhookUrl: read.url('WEBHOOK_URL', { httpOnly: true }),
    webhookSecret: read.string('WEBHOOK_SECRET'),
    rateLimitPerMinute: read.integer('RATE_LIMIT_PER_MINUTE', { min: 0, max: 1_000_000 }) ?? 300,
    authFailureLimitPerMinute:
      read.integer('AUTH_FAILURE_LIMIT_PER_MINUTE', { min: 0, max: 1_000_000 }) ?? 30,
    trustProxy: read.string('TRUST_PROXY'),
    env,
  };

  if (
    config.webhookUrl &&
    (!config.webhookSecret || (config.webhookSecret.length < 32 && !isPlaceholder(config.webhookSecret)))
  ) {
    problems.push('WEBHOOK_SECRET: missing or shorter than 32 characters (required with WEBHOOK_URL)');
  }
  if (config.webhookSecret && isPlaceholder(config.webhookSecret))
    problems.push('WEBHOOK_SECRET: still a placeholder of .env.example; set a secret of your own');
  problems.push(...clientSecretPlaceholders(env));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** `<PROVIDER>_CLIENT_SECRET` variables still holding a placeholder, one problem each. */
function clientSecretPlaceholders(env: Env): string[] {
  return Object.keys(env)
    .filter((name) => /^[A-Z0-9_]+_CLIENT_SECRET$/.test(name) && isPlaceholder(env[name] ?? ''))
    .sort()
    .map((name) => `${name}: still a placeholder of .env.example; set the provider's client secret`);
}

/** The sweeper's bounds (defaults 8 in all, 2 per provider); one provider's share never exceeds the total. */
function readSweepConcurrency(
  read: EnvReader,
  problems: string[],
): Pick<Config, 'sweepConcurrency' | 'sweepConcurrencyPerProvider'> {
  const total = read.integer('SWEEP_CONCURRENCY', { min: 1, max: 100 });
  const perProvider = read.integer('SWEEP_CONCURRENCY_PER_PROVIDER', { min: 1, max: 100 });
  const sweepConcurrency = total ?? 8;
  if (perProvider !== undefined && perProvider > sweepConcurrency) {
    problems.push(`SWEEP_CONCURRENCY_PER_PROVIDER: must not exceed SWEEP_CONCURRENCY (${sweepConcurrency})`);
  }
  // Unset, the per-provider default (2) yields to a lower total rather than refuse start-up.
  return {
    sweepConcurrency,
    sweepConcurrencyPerProvider: Math.min(perProvider ?? 2, sweepConcurrency),
  };
}

function readKeyRing(env: Env, problems: string[]): EncryptionKey[] {
  const raw = env.TOKEN_ENCRYPTION_KEYS?.trim();
  if (!raw) {
    problems.push('TOKEN_ENCRYPTION_KEYS: missing (a comma separated list of kid:base64(32 bytes))');
    return [];
  }
  const keys: EncryptionKey[] = [];
  raw.split(',').forEach((entry, index) => {
    const item = entry.trim();
    const colon = item.indexOf(':');
    const id = colon > 0 ? item.slice(0, colon) : '';
    const material = colon > 0 ? item.slice(colon + 1) : '';
    const where = `TOKEN_ENCRYPTION_KEYS: entry ${index + 1}`;
    if (isPlaceholder(material)) {
      problems.push(`${where}: still a placeholder of .env.example; generate a key with \`keys generate\``);
      return;
    }
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
      problems.push(`${where}: key id must be 1-64 characters of A-Za-z0-9._- before a colon`);
      return;
    }
    const key = /^[A-Za-z0-9+/]+={0,2}$/.test(material) ? Buffer.from(material, 'base64') : Buffer.alloc(0);
    if (key.length !== 32) {
      problems.push(`${where} (${id}): not base64 of 32 bytes`);
      return;
    }
    if (keys.some((k) => k.id === id)) {
      problems.push(`${where} (${id}): duplicate key id`);
      return;
    }
    keys.push({ id, key });
  });
  return keys;
}

function readAllowedReturnUrls(env: Env, problems: string[]): string[] {
  const raw = env.ALLOWED_RETURN_URLS?.trim();
  if (!raw) return [];
  const out: string[] = [];
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      problems.push(`ALLOWED_RETURN_URLS: "${item}" is not a URL`);
      continue;
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
      problems.push(
        `ALLOWED_RETURN_URLS: "${item}" must be an http(s) origin or origin + path, without credentials`,
      );
      continue;
    }
    if (url.search || url.hash) {
      problems.push(`ALLOWED_RETURN_URLS: "${item}" must not carry a query or fragment`);
      continue;
    }
    out.push(url.origin + url.pathname.replace(/\/+$/, ''));
  }
  return out;
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  string(name: string, opts: { allowEmpty?: boolean } = {}): string | undefined {
    const value = this.env[name];
    if (value === undefined) return undefined;
    const trimmed = value.trim();
    if (trimmed === '' && !opts.allowEmpty) return undefined;
    return trimmed;
  }

  integer(name: string, range: { min: number; max: number }): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < range.min || Number(value) > range.max) {
      this.problems.push(`${name}: must be an integer from ${range.min} to ${range.max}`);
      return undefined;
    }
    return Number(value);
  }

  number(name: string, range: { min: number; max: number }): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || n < range.min || n > range.max) {
      this.problems.push(`${name}: must be a number of seconds from ${range.min} to ${range.max}`);
      return undefined;
    }
    return n;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name)?.toLowerCase();
    if (value === undefined) return undefined;
    if (value === 'true' || value === '1' || value === 'yes') return true;
    if (value === 'false' || value === '0' || value === 'no') return false;
    this.problems.push(`${name}: must be true or false`);
    return undefined;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!(values as readonly string[]).includes(value)) {
      this.problems.push(`${name}: must be one of ${values.join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  url(
    name: string,
    opts: { required?: boolean; httpOnly?: boolean; schemes?: string[] } = {},
  ): string | undefined {
    const value = this.string(name);
    if (value === undefined) {
      if (opts.required) this.problems.push(`${name}: missing`);
      return undefined;
    }
    const schemes = opts.schemes ?? (opts.httpOnly ? ['http:', 'https:'] : undefined);
    try {
      const url = new URL(value);
      if (schemes && !schemes.includes(url.protocol)) {
        this.problems.push(
          `${name}: not a URL with scheme ${schemes.map((s) => s.replace(':', '')).join(' or ')}`,
        );
        return undefined;
      }
      // http(s) URLs are compared by their parts later on: keep the parsed, normalised form
      // (lower-case scheme and host, RFC 3986 §6.2.2.1), so `HTTPS://` counts as https everywhere.
      return opts.httpOnly ? url.href : value;
    } catch {
      // Never echo the value: a Redis URL may carry a password.
      this.problems.push(`${name}: not a URL`);
      return undefined;
    }
  }

  hostList(name: string): Array<{ host: string; port: number }> | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const out: Array<{ host: string; port: number }> = [];
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const item of items) {
      const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(item);
      if (!m || Number(m[2]) > 65535) {
        this.problems.push(`${name}: "${item}" is not host:port`);
        continue;
      }
      out.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    }
    // Only when no item was named above: one line per problem.
    if (items.length === 0) this.problems.push(`${name}: no host:port given`);
    return out;
  }

  secretList(name: string, minLength: number): string[] {
    const value = this.string(name);
    if (value === undefined) {
      this.problems.push(`${name}: missing`);
      return [];
    }
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) this.problems.push(`${name}: missing`);
    items.forEach((item, i) => {
      if (isPlaceholder(item))
        this.problems.push(
          `${name}: entry ${i + 1} is still a placeholder of .env.example; set a secret of your own`,
        );
      else if (item.length < minLength)
        this.problems.push(`${name}: entry ${i + 1} is too short (at least ${minLength} characters)`);
    });
    return items;
  }
}
