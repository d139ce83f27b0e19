import { randomBytes } from 'node:crypto';

/** Where a value the demo runs with came from. */
export type SettingSource = 'environment' | 'generated' | 'default' | 'demo';

export interface DemoSetting {
  name: string;
  source: SettingSource;
  /** What the terminal shows: the value, or a description when it is a secret. */
  shown: string;
}

export interface DemoSettings {
  /** The broker's environment for this run (loadConfig reads it). */
  env: Record<string, string>;
  /** One line per variable, in the order they are printed. */
  used: DemoSetting[];
  /** The key the demo's own pages (and the printed commands) use: the first of INTERNAL_API_KEYS. */
  internalApiKey: string;
  /** Whether that key came from the user (then it is never printed). */
  keyFromUser: boolean;
}

export interface DemoSettingsInput {
  /** The user's environment, `.env` included (as the broker reads it). */
  userEnv: Record<string, string | undefined>;
  publicUrl: string;
  publicPort: number;
  internalPort: number;
  /** Where each port came from (the entry point reads PORT and INTERNAL_PORT). */
  portSources: { public: SettingSource; internal: SettingSource };
  redisUrl: string;
  keyPrefix: string;
  logLevel: string;
}

/**
 * The demo's configuration: what the user set for the broker (in the environment or `.env`) where
 * it makes sense for a local run, generated or defaulted where it is unset. PUBLIC_URL, HOST and
 * REDIS_KEY_PREFIX stay the demo's own: its sandbox lives on its own public listener, and its keys
 * live under a prefix of their own so that removing them at exit never touches a real broker's.
 */
export function resolveDemoSettings(input: DemoSettingsInput): DemoSettings {
  const user = (name: string): string | undefined => {
    const value = input.userEnv[name]?.trim();
    return value ? value : undefined;
  };
  const used: DemoSetting[] = [];

  const userKeys = user('INTERNAL_API_KEYS');
  const keys = userKeys ?? randomBytes(24).toString('base64url');
  const keyCount = keys.split(',').filter((k) => k.trim()).length;
  used.push({
    name: 'INTERNAL_API_KEYS',
    source: userKeys ? 'environment' : 'generated',
    shown: userKeys
      ? `yours (${keyCount} key${keyCount === 1 ? '' : 's'}; the demo's pages use the first)`
      : 'generated for this run (printed below)',
  });

  // The demo's own page must stay allowed, whatever the user lists: its connect button returns there.
  const demoReturn = `${input.publicUrl}/demo`;
  const userReturns = user('ALLOWED_RETURN_URLS');
  const returns = userReturns ? `${userReturns},${demoReturn}` : demoReturn;
  used.push({
    name: 'ALLOWED_RETURN_URLS',
    source: userReturns ? 'environment' : 'demo',
    shown: userReturns
      ? `${userReturns} (and the demo's own ${demoReturn})`
      : `${demoReturn} (the demo's own)`,
  });

  used.push({ name: 'PORT', source: input.portSources.public, shown: String(input.publicPort) });
  used.push({ name: 'INTERNAL_PORT', source: input.portSources.internal, shown: String(input.internalPort) });

  const secret = (name: string, generate: () => string): string => {
    const value = user(name);
    used.push({
      name,
      source: value ? 'environment' : 'generated',
      shown: value ? 'yours' : 'generated for this run',
    });
    return value ?? generate();
  };
  const sessionSecret = secret('SESSION_SECRET', () => randomBytes(32).toString('base64url'));
  const encryptionKeys = secret('TOKEN_ENCRYPTION_KEYS', () => `demo:${randomBytes(32).toString('base64')}`);

  const firstKey = keys.split(',')[0]!.trim();
  return {
    env: {
      PUBLIC_URL: input.publicUrl,
      HOST: '127.0.0.1',
      PORT: String(input.publicPort),
      INTERNAL_HOST: '127.0.0.1',
      INTERNAL_PORT: String(input.internalPort),
      REDIS_URL: input.redisUrl,
      REDIS_KEY_PREFIX: input.keyPrefix,
      SESSION_SECRET: sessionSecret,
      TOKEN_ENCRYPTION_KEYS: encryptionKeys,
      INTERNAL_API_KEYS: keys,
      ALLOWED_RETURN_URLS: returns,
      LOG_LEVEL: input.logLevel,
    },
    used,
    internalApiKey: firstKey,
    keyFromUser: userKeys !== undefined,
  };
}

/** The lines the demo prints about its configuration. */
export function describeSettings(used: DemoSetting[]): string[] {
  const width = Math.max(...used.map((s) => s.name.length));
  const from: Record<SettingSource, string> = {
    environment: 'from your environment or .env',
    generated: 'unset',
    default: 'default',
    demo: 'unset',
  };
  return used.map((s) => `  ${s.name.padEnd(width)}  ${s.shown}  [${from[s.source]}]`);
}
