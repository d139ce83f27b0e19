import { createHash, randomBytes } from 'node:crypto';
import { ACCESS_ACTIONS, isAccessAction } from '../access/access-actions';

export interface ServiceKeyLine {
  /** The new key: give it to the service; the broker keeps only its hash. */
  key: string;
  /** The entry to put in SERVICE_KEYS_FILE's "services" list (one JSON line). */
  entry: string;
}

/**
 * `keys service NAME [--providers a,b] [--actions x,y]`: a new random key (256 bits, base64url)
 * and the SERVICE_KEYS_FILE entry that grants it, so nobody computes a hash by hand. Defaults:
 * every provider, the token API only. To rotate, add the new `key_sha256` to the service's list,
 * roll the key out, then remove the old hash (docs/least-privilege.md).
 */
export function serviceKeyLine(args: string[]): ServiceKeyLine | { error: string } {
  const [name, ...flags] = args;
  if (!name || !/^[a-z0-9_.-]{1,64}$/.test(name))
    return {
      error:
        'usage: oauth-broker keys service NAME [--providers a,b] [--actions token,read]  (NAME: 1-64 of a-z 0-9 _ . -)',
    };
  const option = (flag: string): string[] | undefined => {
    const at = flags.indexOf(flag);
    if (at < 0) return undefined;
    return (flags[at + 1] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  };
  const providers = option('--providers') ?? ['*'];
  const actions = option('--actions') ?? ['token'];
  if (providers.length === 0 || providers.some((p) => p !== '*' && !/^[a-z0-9-]{1,64}$/.test(p)))
    return { error: '--providers: a comma separated list of provider ids, or *' };
  const bad = actions.find((a) => !isAccessAction(a));
  if (actions.length === 0 || bad !== undefined)
    return { error: `--actions: a comma separated list from ${ACCESS_ACTIONS.join(', ')}` };
  const key = randomBytes(32).toString('base64url');
  const hash = createHash('sha256').update(key, 'utf8').digest('hex');
  const entry = JSON.stringify({ name, key_sha256: [hash], providers, actions });
  return { key, entry };
}
