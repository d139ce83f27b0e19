import { StoredConnection } from '../connections/connection-record';
import { OwnerFilter } from '../connections/owner-index';
import { CliContext } from './cli-context';
import { Progress } from './progress';

const PAGE = 500;

/** Every connection, page by page from the index (never KEYS). */
export async function* allConnections(
  ctx: Pick<CliContext, 'store'>,
  provider?: string,
  filter: OwnerFilter = {},
): AsyncGenerator<StoredConnection[]> {
  let cursor: string | undefined;
  for (;;) {
    const page = await ctx.store.list({ ...filter, provider, cursor, limit: PAGE });
    if (page.connections.length > 0) yield page.connections;
    if (page.nextCursor === null) return;
    cursor = page.nextCursor;
  }
}

/**
 * `keys status`: connections per key id, from the metadata alone (nothing is decrypted). It goes
 * by SCAN over the records, not by the index: a record a crash left outside the index still
 * counts, and removing its key from the ring would break it.
 */
export async function keysStatus(ctx: Pick<CliContext, 'store' | 'keyRing'>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const page of ctx.store.scan()) {
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
  /** Stopped by its signal (SIGINT) before the end; run it again to resume. */
  interrupted: boolean;
}

export interface RekeyOptions {
  concurrency?: number;
  progress?: Progress;
  /** Aborted: take no new record, let the re-seals under way finish (their locks are released). */
  signal?: AbortSignal;
  /** How long to keep retrying records whose lock is held; default outlives any lock's TTL. */
  busyWaitMs?: number;
}

type Item = { provider: string; connectionId: string };

/**
 * `keys rekey`: re-seals every connection not under the ring's first key, a page of SCAN at a
 * time, while brokers keep serving. Each record is re-sealed under its refresh lock by
 * compare-and-set, so a refresh meanwhile is never undone; a busy record is retried after the
 * others. Safe to interrupt and to run again: it only ever looks at what is still under an old key.
 */
export async function rekey(ctx: CliContext, options: RekeyOptions = {}): Promise<RekeyReport> {
  const active = ctx.keyRing.activeKeyId;
  const report: RekeyReport = {
    total: 0,
    resealed: 0,
    alreadyCurrent: 0,
    changedMeanwhile: 0,
    failed: [],
    remaining: 0,
    interrupted: false,
  };
  const concurrency = options.concurrency ?? 16;
  const aborted = (): boolean => options.signal?.aborted === true;
  // The index and schedule entries a crash may have lost come back first; the records themselves
  // are then found by SCAN, not from the index.
  const expected = (await ctx.store.repair()).records;
  let done = 0;
  const tick = (): void =>
    options.progress?.update(done, Math.max(expected, done), `resealed ${report.resealed}`);

  const resealAll = async (items: Item[], busy: Item[]): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length && !aborted()) {
        const item = items[next++]!;
        try {
          const outcome = await ctx.connections.reseal(item.provider, item.connectionId);
          if (outcome === 'busy') {
            busy.push(item);
            continue;
          }
          if (outcome === 'resealed') report.resealed += 1;
          else if (outcome === 'current') report.alreadyCurrent += 1;
          else if (outcome === 'changed') report.changedMeanwhile += 1;
        } catch (error) {
          report.failed.push({ ...item, reason: error instanceof Error ? error.message : 'unknown error' });
        }
        done += 1;
        tick();
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  };

  let busy: Item[] = [];
  for await (const page of ctx.store.scan()) {
    if (aborted()) break;
    const todo: Item[] = [];
    for (const c of page) {
      report.total += 1;
      if (c.key_id === active) {
        report.alreadyCurrent += 1;
        done += 1;
      } else todo.push({ provider: c.provider, connectionId: c.connection_id });
    }
    tick();
    await resealAll(todo, busy);
  }

  // A busy record is being refreshed (the refresh writes it under the first key anyway) or was
  // locked by a process that died: its lock lapses after at most the refresh lock's TTL
  // (PROVIDER_TIMEOUT per try, two tries, plus 5 s), so keep retrying a little longer than that.
  const busyWaitMs = options.busyWaitMs ?? (ctx.config.providerTimeoutSeconds * 2 + 10) * 1000;
  const deadline = Date.now() + busyWaitMs;
  let pause = 250;
  while (busy.length > 0 && !aborted() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 2000);
    const again: Item[] = [];
    await resealAll(busy, again);
    busy = again;
  }
  options.progress?.finish();
  report.interrupted = aborted();
  const status = await keysStatus(ctx);
  report.remaining = [...status.entries()]
    .filter(([kid]) => kid !== active)
    .reduce((n, [, count]) => n + count, 0);
  return report;
}
