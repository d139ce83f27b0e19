/**
 * Values that stand for "put your secret here": what `.env.example` ships (`CHANGE_ME`, and
 * `k1:CHANGE_ME` whose key material is the same word) and the usual variants of it. A broker
 * started with one would accept a key everyone can read in the repository, so each is refused
 * at start-up wherever the broker listens (docs/configuration-hardening.md).
 */
const PLACEHOLDER_WORDS = new Set([
  'changeme',
  'replaceme',
  'placeholder',
  'secret',
  'password',
  'todo',
  'fixme',
  'example',
]);

/** Whether one secret (or one entry of a comma separated list of them) is a placeholder. */
export function isPlaceholder(value: string): boolean {
  // Case and punctuation vary (CHANGE_ME, change-me, <changeme>): compare letters and digits only.
  const bare = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  return (
    PLACEHOLDER_WORDS.has(bare) ||
    bare.startsWith('changeme') ||
    bare.startsWith('replaceme') ||
    /^x{3,}$/.test(bare)
  );
}
