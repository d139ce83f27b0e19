import type { RedisClient } from '../connections/redis-client';
import { AuditEntry, entryFrom } from './audit-entry';
import { AUDIT_SHARDS, shardFor } from './audit-log';

export interface AuditQuery {
  actor?: string;
  action?: string;
  provider?: string;
  connectionId?: string;
  /** Only entries of these providers (a scoped caller's grant); undefined: all. */
  providers?: ReadonlySet<string>;
  /** Inclusive bounds, in ms since the epoch. */
  sinceMs?: number;
  untilMs?: number;
  /** An entry id of an earlier page: this page starts right after (older than) it. */
  cursor?: string;
  limit: number;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Null at the end; a page may hold fewer than `limit` entries while more may follow. */
  nextCursor: string | null;
}

/** An entry id, `ms-seq-shard`, as the log answers it (and takes it back as a cursor). */
export const AUDIT_ID = /^(\d{1,15})-(\d{1,20})-(\d{1,2})$/;

/** Entries looked at per request at most, so a filter that matches little cannot make one request scan the whole log. */
const SCAN_BUDGET = 20_000;

type Raw = [string, string[]];

interface Position {
  ms: bigint;
  seq: bigint;
  shard: number;
}

/** Newest first: by stream id, then by shard (ids of two shards may be equal). */
function newer(a: Position, b: Position): boolean {
  if (a.ms !== b.ms) return a.ms > b.ms;
  if (a.seq !== b.seq) return a.seq > b.seq;
  return a.shard > b.shard;
}

function positionOf(streamId: string, shard: number): Position {
  const [ms, seq] = streamId.split('-');
  return { ms: BigInt(ms!), seq: BigInt(seq!), shard };
}

/**
 * A page of the audit log, newest first, over every shard (merged by id), or over the one shard a
 * connection's entries live on when both `provider` and `connectionId` are given. Filters are
 * applied as the shards are read (XREVRANGE, in chunks), within SCAN_BUDGET entries; the cursor
 * is the last entry looked at, so the next page goes on from there.
 */
export async function readAuditLog(
  redis: RedisClient,
  shardKey: (index: number) => string,
  query: AuditQuery,
): Promise<AuditPage> {
  const shards =
    query.provider !== undefined && query.connectionId !== undefined
      ? [shardFor(query.provider, query.connectionId)]
      : Array.from({ length: AUDIT_SHARDS }, (_, i) => i);
  const cursor = query.cursor ? AUDIT_ID.exec(query.cursor) : null;
  const cursorPos = cursor
    ? { ms: BigInt(cursor[1]!), seq: BigInt(cursor[2]!), shard: Number(cursor[3]) }
    : undefined;
  const lowest = query.sinceMs !== undefined ? `${query.sinceMs}-0` : '-';
  const chunk = Math.min(Math.max(query.limit + 1, 64), 1000);

  const readers = shards.map((shard) => {
    let end = query.untilMs !== undefined ? `${query.untilMs}-18446744073709551615` : '+';
    if (cursorPos) {
      // Entries of a lower shard with the cursor's very id come after it in the merged order.
      const id = `${cursorPos.ms}-${cursorPos.seq}`;
      const bound = shard < cursorPos.shard ? id : `(${id}`;
      end = query.untilMs !== undefined && BigInt(query.untilMs) < cursorPos.ms ? end : bound;
    }
    return { shard, key: shardKey(shard), end, buffer: [] as Raw[], done: false };
  });

  const refill = async (): Promise<void> => {
    await Promise.all(
      readers
        .filter((r) => r.buffer.length === 0 && !r.done)
        .map(async (r) => {
          const batch = (await redis.xrevrange(r.key, r.end, lowest, 'COUNT', chunk)) as Raw[];
          r.buffer = batch;
          if (batch.length < chunk) r.done = true;
          if (batch.length > 0) r.end = `(${batch[batch.length - 1]![0]}`;
        }),
    );
  };

  const entries: AuditEntry[] = [];
  let scanned = 0;
  let last: string | undefined;
  for (;;) {
    await refill();
    let best: (typeof readers)[number] | undefined;
    let bestPos: Position | undefined;
    for (const r of readers) {
      const head = r.buffer[0];
      if (!head) continue;
      const pos = positionOf(head[0], r.shard);
      if (!bestPos || newer(pos, bestPos)) {
        best = r;
        bestPos = pos;
      }
    }
    if (!best) return { entries, nextCursor: null };
    const [streamId, fields] = best.buffer.shift()!;
    const entry = entryFrom(streamId, best.shard, fields);
    scanned += 1;
    last = entry.id;
    if (matches(entry, query)) entries.push(entry);
    if (entries.length >= query.limit || scanned >= SCAN_BUDGET) break;
  }
  // Whether anything follows: one more look, so the last page answers null.
  await refill();
  const more = readers.some((r) => r.buffer.length > 0);
  return { entries, nextCursor: more ? (last ?? null) : null };
}

function matches(entry: AuditEntry, query: AuditQuery): boolean {
  return (
    (query.actor === undefined || entry.actor === query.actor) &&
    (query.action === undefined || entry.action === query.action) &&
    (query.provider === undefined || entry.provider === query.provider) &&
    (query.providers === undefined || (entry.provider !== null && query.providers.has(entry.provider))) &&
    (query.connectionId === undefined || entry.connection_id === query.connectionId)
  );
}

/**
 * Entries newer than `after` (per shard: the last stream id seen), oldest first: what `audit
 * --follow` prints as it polls. Answers the entries and the positions to poll from next.
 */
export async function readAuditAfter(
  redis: RedisClient,
  shardKey: (index: number) => string,
  after: string[],
  limitPerShard = 1000,
): Promise<{ entries: AuditEntry[]; after: string[] }> {
  const next = [...after];
  const batches = await Promise.all(
    after.map(
      (from, shard) =>
        redis.xrange(shardKey(shard), `(${from}`, '+', 'COUNT', limitPerShard) as Promise<Raw[]>,
    ),
  );
  const entries: Array<{ entry: AuditEntry; pos: Position }> = [];
  batches.forEach((batch, shard) => {
    for (const [streamId, fields] of batch) {
      entries.push({ entry: entryFrom(streamId, shard, fields), pos: positionOf(streamId, shard) });
      next[shard] = streamId;
    }
  });
  entries.sort((a, b) => (newer(a.pos, b.pos) ? 1 : newer(b.pos, a.pos) ? -1 : 0));
  return { entries: entries.map((e) => e.entry), after: next };
}

/** Where each shard ends now (`0-0` when empty): `audit --follow` polls from there. */
export async function auditEnds(redis: RedisClient, shardKey: (index: number) => string): Promise<string[]> {
  return Promise.all(
    Array.from({ length: AUDIT_SHARDS }, async (_, shard) => {
      const top = (await redis.xrevrange(shardKey(shard), '+', '-', 'COUNT', 1)) as Raw[];
      return top[0]?.[0] ?? '0-0';
    }),
  );
}

export { matches as auditEntryMatches };
