import { ConnectionPage } from '../../connections/connection-store';

type List = (options: { provider?: string; cursor?: string; limit: number }) => Promise<ConnectionPage>;

/**
 * The listing as a scoped service sees it: only its providers' connections, in the same order and
 * paged by the same cursor as the full listing. The index is ordered `provider:connection_id`, so
 * each provider is one contiguous range: the page walks the granted providers in order, each
 * through the listing's own provider filter, never reading another provider's records.
 */
export async function listGranted(
  list: List,
  providers: readonly string[],
  cursor: string | undefined,
  limit: number,
): Promise<ConnectionPage> {
  const sorted = [...providers].sort();
  const from = cursor ? cursor.slice(0, cursor.indexOf(':')) : undefined;
  const out: ConnectionPage['connections'] = [];
  let last: string | undefined;
  for (let i = 0; i < sorted.length; i++) {
    const provider = sorted[i]!;
    if (from !== undefined && provider < from) continue;
    const page = await list({
      provider,
      cursor: from === provider ? cursor : undefined,
      limit: limit - out.length,
    });
    out.push(...page.connections);
    const tail = page.connections[page.connections.length - 1];
    if (tail) last = `${tail.provider}:${tail.connection_id}`;
    if (page.nextCursor !== null) return { connections: out, nextCursor: page.nextCursor };
    if (out.length >= limit) {
      // This provider is done; more may follow under the next ones.
      return { connections: out, nextCursor: i + 1 < sorted.length ? (last ?? null) : null };
    }
  }
  return { connections: out, nextCursor: null };
}
