import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestService {
  name: string;
  /** The keys themselves; the file gets their SHA-256 hashes, as an operator's would. */
  keys: string[];
  providers: string[];
  actions: string[];
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A SERVICE_KEYS_FILE in a fresh temporary directory; answers its path. */
export function writeServiceKeysFile(services: TestService[] | unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ob-service-keys-')), 'service-keys.json');
  const body = Array.isArray(services)
    ? {
        services: (services as TestService[]).map((s) => ({
          name: s.name,
          key_sha256: s.keys.map(sha256Hex),
          providers: s.providers,
          actions: s.actions,
        })),
      }
    : services;
  writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body));
  return path;
}

/** `key:<first 8 hex of SHA-256>`: the audit log's actor of an INTERNAL_API_KEYS key. */
export function keyActor(key: string): string {
  return `key:${sha256Hex(key).slice(0, 8)}`;
}
