import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Config } from '../config/config';
import { ConfigError } from '../config/config-error';
import { isLoopbackHost } from '../config/load-config';
import { BUILT_IN_PROVIDERS } from './catalogue';
import {
  DEFAULT_KEEPALIVE_SECONDS,
  PROVIDER_DEFAULTS,
  Provider,
  ProviderDefinition,
  ProviderEntry,
  DEFAULT_API_KEY_SETTINGS,
  apiBaseUrlSchema,
  envPrefixOf,
  providerEntrySchema,
} from './provider-definition';
import { ProviderRegistry } from './provider-registry';

type RegistryConfig = Pick<
  Config,
  'providersFile' | 'publicUrl' | 'allowInsecureProviderUrls' | 'keepaliveAfterSeconds' | 'env'
>;

/**
 * Merges the built-in catalogue, PROVIDERS_FILE and the `<PROVIDER>_*` variables into the
 * registry. Every problem is collected and start-up stops with all of them, each naming the entry
 * (or variable) and the field.
 */
export function loadProviderRegistry(
  config: RegistryConfig,
  builtIns = BUILT_IN_PROVIDERS,
): ProviderRegistry {
  const problems: string[] = [];
  const entries = new Map<string, ProviderEntry>(builtIns.map((e) => [e.id, e]));
  const fromFile = config.providersFile ? readProvidersFile(config.providersFile, problems) : [];

  for (const entry of fromFile) {
    const builtIn = entries.get(entry.id);
    // A named field replaces the built-in's value whole; objects are not merged.
    entries.set(entry.id, builtIn && !entry.extends ? { ...builtIn, ...entry } : entry);
  }

  const providers: Provider[] = [];
  for (const id of entries.keys()) {
    const flat = flattenExtends(id, entries, problems);
    if (!flat) continue;
    const provider = applyEnvironment(flat, config, problems);
    if (provider) providers.push(provider);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return new ProviderRegistry(providers);
}

function readProvidersFile(path: string, problems: string[]): ProviderEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    problems.push(`PROVIDERS_FILE: ${path} ${why}`);
    return [];
  }
  const file = z.strictObject({ providers: z.array(z.unknown()) }).safeParse(parsed);
  if (!file.success) {
    problems.push('PROVIDERS_FILE: must be a JSON object {"providers": [ … ]} and nothing else');
    return [];
  }
  const out: ProviderEntry[] = [];
  const firstEntryOf = new Map<string, number>();
  file.data.providers.forEach((raw, index) => {
    const label = entryLabel(raw, index);
    // Ids are compared before the entries are checked, so a duplicate of a faulty entry is
    // reported beside that entry's own problems: the operator sees every problem at once.
    const id = idOf(raw);
    const first = id === undefined ? undefined : firstEntryOf.get(id);
    if (id !== undefined && first === undefined) firstEntryOf.set(id, index);
    const result = providerEntrySchema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues)
        problems.push(`PROVIDERS_FILE: ${label}: ${describeIssue(issue)}`);
    }
    if (first !== undefined) {
      problems.push(`PROVIDERS_FILE: ${label}: field "id": duplicate id (entry ${first + 1} has it already)`);
    }
    if (result.success && first === undefined) out.push(result.data);
  });
  return out;
}

function idOf(raw: unknown): string | undefined {
  const id = raw && typeof raw === 'object' && 'id' in raw ? (raw as { id: unknown }).id : undefined;
  return typeof id === 'string' ? id : undefined;
}

function entryLabel(raw: unknown, index: number): string {
  const id = idOf(raw);
  return id !== undefined ? `provider "${id.slice(0, 64)}" (entry ${index + 1})` : `entry ${index + 1}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const field = issue.path.join('.') || '(entry)';
  return `field "${field}": ${issue.message}`;
}

/** Resolves `extends` chains: the base's definition, then the entry's own fields on top. */
function flattenExtends(
  id: string,
  entries: Map<string, ProviderEntry>,
  problems: string[],
): ProviderEntry | undefined {
  const chain: ProviderEntry[] = [];
  let current = entries.get(id);
  while (current) {
    if (chain.some((e) => e.id === current!.id)) {
      problems.push(
        `PROVIDERS_FILE: provider "${id}": field "extends": cycle (${[...chain.map((e) => e.id), current.id].join(' -> ')})`,
      );
      return undefined;
    }
    chain.push(current);
    if (!current.extends) break;
    const base = entries.get(current.extends);
    if (!base) {
      problems.push(
        `PROVIDERS_FILE: provider "${current.id}": field "extends": unknown provider "${current.extends}"`,
      );
      return undefined;
    }
    current = base;
  }
  const merged = chain.reverse().reduce<ProviderEntry>((acc, e) => ({ ...acc, ...e }), { id });
  return { ...merged, id, extends: undefined };
}

function applyEnvironment(
  entry: ProviderEntry,
  config: RegistryConfig,
  problems: string[],
): Provider | undefined {
  const prefix = envPrefixOf(entry.id);
  const env = (suffix: string): string | undefined => config.env[`${prefix}_${suffix}`];
  const set = (suffix: string): string | undefined => {
    const value = env(suffix)?.trim();
    return value ? value : undefined;
  };

  const def: ProviderDefinition = {
    ...PROVIDER_DEFAULTS,
    display_name: entry.id,
    ...stripUndefined(entry),
    revocation_url: entry.revocation_url ?? undefined,
    issuer: entry.issuer ?? undefined,
  } as ProviderDefinition;

  const authMode = set('AUTH_MODE');
  if (authMode !== undefined) {
    if (authMode !== 'oauth2' && authMode !== 'api_key')
      problems.push(`${prefix}_AUTH_MODE: must be oauth2 or api_key`);
    else def.auth_mode = authMode;
  }
  const authorizationUrl = set('AUTHORIZATION_URL');
  if (authorizationUrl) {
    def.authorization_url = authorizationUrl;
    // Another authorization server is another issuer: the catalogue's issuer no longer applies.
    def.issuer = undefined;
  }
  def.token_url = set('TOKEN_URL') ?? def.token_url;
  def.revocation_url = set('REVOCATION_URL') ?? def.revocation_url;
  const issuer = env('ISSUER');
  if (issuer !== undefined) def.issuer = issuer.trim() === '' ? undefined : issuer.trim();
  def.api_base_url = set('API_BASE_URL')?.replace(/\/+$/, '') ?? def.api_base_url;
  const verifyUrl = set('API_KEY_VERIFY_URL');
  if (verifyUrl) def.api_key = { ...DEFAULT_API_KEY_SETTINGS, ...def.api_key, verify_url: verifyUrl };

  const scopesVar = env('SCOPES');
  const scopes =
    scopesVar !== undefined
      ? scopesVar
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean)
      : def.default_scopes;

  const label = (field: string, variable: string): string =>
    `${entry.id}: ${variable && env(variable) ? `${prefix}_${variable}` : `field "${field}"`}`;
  if (def.auth_mode === 'oauth2') {
    if (!def.authorization_url) problems.push(`provider "${entry.id}": field "authorization_url": missing`);
    if (!def.token_url) problems.push(`provider "${entry.id}": field "token_url": missing`);
  }
  const urlFields: Array<[keyof ProviderDefinition, string]> = [
    ['authorization_url', 'AUTHORIZATION_URL'],
    ['token_url', 'TOKEN_URL'],
    ['revocation_url', 'REVOCATION_URL'],
    ['api_base_url', 'API_BASE_URL'],
  ];
  for (const [field, variable] of urlFields) {
    const value = def[field] as string | undefined;
    if (value) checkEndpointUrl(value, label(field, variable), config.allowInsecureProviderUrls, problems);
  }
  if (
    def.api_base_url &&
    URL.canParse(def.api_base_url) &&
    !apiBaseUrlSchema.safeParse(def.api_base_url).success
  ) {
    problems.push(
      `${label('api_base_url', 'API_BASE_URL')}: must be an http(s) URL without credentials, query or fragment`,
    );
  }
  if (def.api_key?.verify_url) {
    checkEndpointUrl(
      def.api_key.verify_url,
      label('api_key.verify_url', 'API_KEY_VERIFY_URL'),
      config.allowInsecureProviderUrls,
      problems,
    );
  }

  const clientId = set('CLIENT_ID');
  const clientSecret = set('CLIENT_SECRET');
  const keepalive = config.keepaliveAfterSeconds ?? def.keepalive_after ?? DEFAULT_KEEPALIVE_SECONDS;
  return {
    ...def,
    env_prefix: prefix,
    client_id: clientId,
    client_secret: clientSecret,
    enabled: def.auth_mode === 'api_key' || Boolean(clientId && clientSecret),
    scopes,
    redirect_uri: `${config.publicUrl}/callback/${entry.id}`,
    keepalive_seconds: keepalive,
  };
}

/**
 * Provider endpoints must be HTTPS (RFC 9700 §2.6): plain HTTP only for loopback (tests, local
 * sandboxes) or when ALLOW_INSECURE_PROVIDER_URLS says so.
 */
function checkEndpointUrl(value: string, label: string, allowInsecure: boolean, problems: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${label}: not a URL`);
    return;
  }
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:') {
    problems.push(`${label}: not an http(s) URL`);
    return;
  }
  if (!allowInsecure && !isLoopbackHost(url.hostname)) {
    problems.push(
      `${label}: http:// is allowed only for loopback hosts (set ALLOW_INSECURE_PROVIDER_URLS=true to allow it)`,
    );
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
