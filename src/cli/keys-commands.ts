import { StoredConnection } from '../connections/connection-record';
import { CliContext } from './cli-context';
import { Progress } from './progress';

const PAGE = 500;

/** Every connection, page by page from the index (never KEYS). */
export async function* allConnections(ctx: Pick<CliContext, 'store'>, provider?: string): AsyncGenerator<StoredConnection[]> {
  let cursor: string | undefined;
  for (;;) {
    const page = await ctx.store.list({ provider, cursor, limit: PAGE });
    if (page.connections.length > 0) yield page.connections;
    if (page.nextCursor === null) return;
    cursor = page.nextCursor;
  }
}

/** `keys status`: connections per key id, from the metadata alone (nothing is decrypted). */
export async function keysStatus(ctx: Pick<CliContext, 'store' | 'keyRing'>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const page of allConnections(ctx)) {
    for (const c of page) counts.set(c.key_id, (counts.get(c.key_id) ?? 0) + 1);
  }
  return counts;
}

export interface RekeyReport {
  total: number;
  resealed: number;
  alreadyCurrent: number;
  /** Changed by a refresh or reconnect meanwhile: written under the first key by that write. */
  changedMeanwhile: number;
  failed: Array<{ provider: string; connectionId: string; reason: string }>;
  remaining: number;
}

/**
 * `keys rekey`: re-seals every connection not under the ring's first key, in batches, while
 * brokers keep serving. Each record is re-sealed under its refresh lock by compare-and-set, so a
 * refresh meanwhile is never undone; a busy record is retried after the others. Safe to
 * interrupt and to run again: it only ever looks at what is still under an old key.
 */
export async function rekey(ctx: CliContext, options: { concurrency?: number; progress?: Progress } = {}): Promise<RekeyReport> {
  const active = ctx.keyRing.activeKeyId;
  const report: RekeyReport = { total: 0, resealed: 0, alreadyCurrent: 0, changedMeanwhile: 0, failed: [], remaining: 0 };
  const todo: Array<{ provider: string; connectionId: string }> = [];
  for await (const page of allConnections(ctx)) {
    for (const c of page) {
      report.total += 1;
      if (c.key_id === active) report.alreadyCurrent += 1;
      else todo.push({ provider: c.provider, connectionId: c.connection_id });
    }
  }
  const concurrency = options.concurrency ?? 16;
  let done = 0;
  let queue = todo;
  for (let round = 0; round < 20 && queue.length > 0; round++) {
    const busy: typeof todo = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < queue.length) {
        const item = queue[next++]!;
        try {
          const outcome = await ctx.connections.reseal(item.provider, item.connectionId);
          if (outcome === 'busy') {
            busy.push(item);
            continue;
          }
          if (outcome === 'resealed') report.resealed += 1;
          else if (outcome === 'current') report.alreadyCurrent += 1;
          else if (outcome === 'changed') report.changedMeanwhile += 1;
          done += 1;
        } catch (error) {
          report.failed.push({ ...item, reason: error instanceof Error ? error.message : 'unknown error' });
          done += 1;
        }
        options.progress?.update(done, todo.length, `resealed ${report.resealed}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    queue = busy;
    if (busy.length > 0) await new Promise((r) => setTimeout(r, 250));
  }
  options.progress?.finish();
  const status = await keysStatus(ctx);
  report.remaining = [...status.entries()].filter(([kid]) => kid !== active).reduce((n, [, count]) => n + count, 0);
  return report;
}
