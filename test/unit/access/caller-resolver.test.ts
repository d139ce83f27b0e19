import { createHash } from 'node:crypto';
import { createCallerResolver, keyActor } from '../../../src/access/caller-resolver';
import { refusal } from '../../../src/access/caller';
import { parseServiceKeys } from '../../../src/access/load-service-keys';

const ADMIN = 'admin-key-0123456789abcdef0123456789abcdef';
const OLD = 'billing-old-0123456789abcdef0123456789abcd';
const NEW = 'billing-new-0123456789abcdef0123456789abcd';
const hex = (k: string) => createHash('sha256').update(k).digest('hex');

describe('resolving a key to a caller (INTERNAL_API_KEYS and service keys)', () => {
  const services = parseServiceKeys({
    services: [
      { name: 'billing', key_sha256: [hex(OLD), hex(NEW)], providers: ['jobber'], actions: ['token'] },
    ],
  });
  const resolve = createCallerResolver([ADMIN], services);

  it('resolves an INTERNAL_API_KEYS key to key:<8 hex> with every right', () => {
    const caller = resolve(`Bearer ${ADMIN}`)!;
    expect(caller.actor).toBe(`key:${hex(ADMIN).slice(0, 8)}`);
    expect(caller.actor).toBe(keyActor(ADMIN));
    expect(caller.scoped).toBe(false);
    for (const action of ['token', 'proxy', 'read', 'connect', 'write', 'delete', 'admin'] as const)
      expect(refusal(caller, action, 'anything')).toBeUndefined();
  });

  it('resolves either key of a service in rotation to the service and its grant', () => {
    for (const key of [OLD, NEW]) {
      const caller = resolve(`bearer ${key}`)!;
      expect(caller).toMatchObject({ actor: 'billing', scoped: true });
      expect(refusal(caller, 'token', 'jobber')).toBeUndefined();
      expect(refusal(caller, 'read', 'jobber')?.code).toBe('forbidden');
      expect(refusal(caller, 'token', 'bexio')?.extra).toEqual({ refused: { provider: 'bexio' } });
    }
  });

  it.each([
    ['no header', undefined],
    ['a wrong key', 'Bearer wrong-0123456789abcdef0123456789abcdef'],
    ['a prefix of a service key', `Bearer ${OLD.slice(0, -1)}`],
    ['a service key with one more character', `Bearer ${OLD}x`],
    ['the hash instead of the key', `Bearer ${hex(OLD)}`],
    ['a key under another scheme', `Basic ${NEW}`],
  ])('resolves %s to nobody', (_name, header) => {
    expect(resolve(header)).toBeUndefined();
  });

  it('works with no service keys at all (INTERNAL_API_KEYS only, no hashing)', () => {
    const plain = createCallerResolver([ADMIN], []);
    expect(plain(`Bearer ${ADMIN}`)?.scoped).toBe(false);
    expect(plain(`Bearer ${OLD}`)).toBeUndefined();
  });
});

describe('SERVICE_KEYS_FILE checks, each naming the entry and the field', () => {
  const good = { name: 'billing', key_sha256: [hex('k')], providers: ['jobber'], actions: ['token'] };
  const problems = (file: unknown): string[] => {
    try {
      parseServiceKeys(file);
      return [];
    } catch (error) {
      return (error as { problems: string[] }).problems;
    }
  };

  it('accepts a good file, ["*"] included', () => {
    expect(
      problems({ services: [good, { ...good, name: 'ops', key_sha256: [hex('o')], providers: ['*'] }] }),
    ).toEqual([]);
  });

  it.each([
    ['a list instead of an object', [good], /must be an object \{"services"/],
    [
      '"*" beside other providers',
      { services: [{ ...good, providers: ['*', 'jobber'] }] },
      /service 1 \(billing\): providers: "\*" must stand alone/,
    ],
    [
      'no actions',
      { services: [{ ...good, actions: [] }] },
      /service 1 \(billing\): actions: must be a non-empty list/,
    ],
    [
      'one hash for two services',
      { services: [good, { ...good, name: 'other' }] },
      /service 2 \(other\): key_sha256: a hash already given to service "billing"/,
    ],
    [
      'an unknown top-level field',
      { services: [good], extra: 1 },
      /SERVICE_KEYS_FILE: "extra": unknown field/,
    ],
  ])('refuses %s', (_name, file, message) => {
    expect(problems(file).join('\n')).toMatch(message);
  });
});
