import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/config-error';
import { ACCESS_ACTIONS, AccessAction, isAccessAction } from './access-actions';

/** One entry of SERVICE_KEYS_FILE, checked: its key hashes as bytes, its grant as sets. */
export interface ServiceKey {
  name: string;
  /** SHA-256 digests (32 bytes each) of the keys the service may present; several during a rotation. */
  keySha256: Buffer[];
  providers: '*' | Set<string>;
  actions: Set<AccessAction>;
}

const FIELDS = ['name', 'key_sha256', 'providers', 'actions'];

/**
 * Reads SERVICE_KEYS_FILE (`{"services": [{name, key_sha256, providers, actions}]}`) and stops
 * start-up on any problem, each line naming the entry and the field. The file holds hashes, never
 * a key.
 */
export function loadServiceKeys(path: string | undefined): ServiceKey[] {
  if (!path) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    throw new ConfigError([`SERVICE_KEYS_FILE: ${path} ${why}`]);
  }
  return parseServiceKeys(parsed);
}

export function parseServiceKeys(parsed: unknown): ServiceKey[] {
  const problems: string[] = [];
  const root = parsed as { services?: unknown } | null;
  if (typeof root !== 'object' || root === null || Array.isArray(root) || !Array.isArray(root.services)) {
    throw new ConfigError(['SERVICE_KEYS_FILE: must be an object {"services": [ … ]}']);
  }
  for (const field of Object.keys(root)) {
    if (field !== 'services') problems.push(`SERVICE_KEYS_FILE: ${clip(field)}: unknown field`);
  }
  const services: ServiceKey[] = [];
  const names = new Set<string>();
  const hashes = new Map<string, string>();
  root.services.forEach((raw: unknown, index: number) => {
    const service = checkEntry(raw, index, problems);
    if (!service) return;
    const where = `SERVICE_KEYS_FILE: service ${index + 1} (${service.name})`;
    if (names.has(service.name)) problems.push(`${where}: name: duplicate name`);
    names.add(service.name);
    for (const hash of service.keySha256) {
      const hex = hash.toString('hex');
      const owner = hashes.get(hex);
      // One key, one actor: a key shared by two services would make the audit log ambiguous.
      if (owner !== undefined && owner !== service.name)
        problems.push(`${where}: key_sha256: a hash already given to service "${owner}"`);
      hashes.set(hex, service.name);
    }
    services.push(service);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return services;
}

function checkEntry(raw: unknown, index: number, problems: string[]): ServiceKey | undefined {
  const base = `SERVICE_KEYS_FILE: service ${index + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${base}: must be an object`);
    return undefined;
  }
  const entry = raw as Record<string, unknown>;
  const name =
    typeof entry.name === 'string' && /^[a-z0-9_.-]{1,64}$/.test(entry.name) ? entry.name : undefined;
  const where = name ? `${base} (${name})` : base;
  const before = problems.length;
  if (!name) problems.push(`${where}: name: must be 1-64 characters of a-z 0-9 _ . -`);
  for (const field of Object.keys(entry)) {
    if (!FIELDS.includes(field)) problems.push(`${where}: ${clip(field)}: unknown field`);
  }

  const keySha256: Buffer[] = [];
  if (!Array.isArray(entry.key_sha256) || entry.key_sha256.length === 0) {
    problems.push(`${where}: key_sha256: must be a non-empty list of hex SHA-256 digests`);
  } else {
    entry.key_sha256.forEach((hash: unknown, i: number) => {
      if (typeof hash === 'string' && /^[0-9a-fA-F]{64}$/.test(hash))
        keySha256.push(Buffer.from(hash, 'hex'));
      else problems.push(`${where}: key_sha256[${i}]: not 64 hex characters (a SHA-256 digest)`);
    });
  }

  let providers: '*' | Set<string> = new Set();
  if (!Array.isArray(entry.providers) || entry.providers.length === 0) {
    problems.push(`${where}: providers: must be a non-empty list of provider ids, or ["*"]`);
  } else if (entry.providers.includes('*')) {
    if (entry.providers.length > 1) problems.push(`${where}: providers: "*" must stand alone`);
    providers = '*';
  } else {
    entry.providers.forEach((id: unknown, i: number) => {
      if (typeof id === 'string' && /^[a-z0-9-]{1,64}$/.test(id)) (providers as Set<string>).add(id);
      else problems.push(`${where}: providers[${i}]: not a provider id (a-z 0-9 -)`);
    });
  }

  const actions = new Set<AccessAction>();
  if (!Array.isArray(entry.actions) || entry.actions.length === 0) {
    problems.push(`${where}: actions: must be a non-empty list from ${ACCESS_ACTIONS.join(', ')}`);
  } else {
    entry.actions.forEach((action: unknown, i: number) => {
      if (isAccessAction(action)) actions.add(action);
      else problems.push(`${where}: actions[${i}]: must be one of ${ACCESS_ACTIONS.join(', ')}`);
    });
  }
  if (problems.length > before || !name) return undefined;
  return { name, keySha256, providers, actions };
}

/** A field name from the file, echoed harmlessly. */
function clip(value: string): string {
  return JSON.stringify(value.slice(0, 40));
}
