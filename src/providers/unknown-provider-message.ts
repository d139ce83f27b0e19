import { ProviderRegistry } from './provider-registry';

/** At most this many enabled ids are listed; more would drown the message. */
const LISTED = 20;

/**
 * The detail of a `provider_not_found`: what was asked (made safe to echo), the id meant when one
 * is close (a different case, or a typo of at most a third of its letters), and the enabled
 * providers, so the caller can fix the request without reading the configuration.
 */
export function unknownProviderMessage(registry: ProviderRegistry, asked: unknown): string {
  const raw = typeof asked === 'string' ? asked.slice(0, 64) : '';
  const shown = raw.replace(/[^\w.-]/g, '?');
  const known = registry.all().map((p) => p.id);
  const enabled = registry.enabled().map((p) => p.id);
  const parts = [`Unknown provider "${shown}".`];

  const sameLetters = known.find((id) => id.toLowerCase() === raw.toLowerCase());
  const closest = sameLetters ?? nearest(raw.toLowerCase(), enabled.length > 0 ? enabled : known);
  if (closest) parts.push(`Did you mean "${closest}"?`);
  parts.push('Provider ids are case-sensitive (lower case).');
  parts.push(
    enabled.length === 0
      ? 'No provider is enabled: set <PROVIDER>_CLIENT_ID and <PROVIDER>_CLIENT_SECRET for one (see GET /internal/providers).'
      : `Enabled providers: ${enabled.slice(0, LISTED).join(', ')}${enabled.length > LISTED ? `, and ${enabled.length - LISTED} more (GET /internal/providers)` : ''}.`,
  );
  return parts.join(' ');
}

/** The candidate within edit distance max(1, a third of its length) of `word`, the closest first. */
function nearest(word: string, candidates: string[]): string | undefined {
  let best: { id: string; distance: number } | undefined;
  for (const id of candidates) {
    const distance = editDistance(word, id);
    if (distance <= Math.max(1, Math.floor(id.length / 3)) && (!best || distance < best.distance))
      best = { id, distance };
  }
  return best?.id;
}

/** Levenshtein distance (insert, delete, substitute), one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = row;
  }
  return previous[b.length]!;
}
