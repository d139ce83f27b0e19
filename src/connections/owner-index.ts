import { randomBytes } from 'node:crypto';
import {
  ConnectionOwner,
  NO_OWNER,
  OwnerChange,
  applyOwnerChange,
  decodeEndUser,
  decodeTags,
  ownerMatches,
  ownerOf,
} from './connection-owner';
import { StoredConnection } from './connection-record';
import { RedisClient } from './redis-client';
import { RedisKeys, memberOf, parseMember } from './redis-keys';

/** A filtered listing's filters: all that are given must match. */
export interface OwnerFilter {
  provider?: string;
  endUserId?: string;
  tags?: ReadonlyArray<readonly [string, string]>;
}

export interface OwnerPage {
  connections: StoredConnection[];
  nextCursor: string | null;
}

type ReadRecord = (provider: string, connectionId: string) => Promise<StoredConnection | null>;

/** An owner write under way: what `finish` puts in line, and the repair-journal entries it clears. */
export interface OwnerWrite {
  provider: string;
  connectionId: string;
  indexKeys: string[];
  journal: string[];
}

/** How long a journal entry waits before the sweeper repairs it: its writer is surely gone by then. */
export const REPAIR_GRACE_MS = 60_000;

/**
 * The owner indexes: per end user and per tag pair a sorted set of `provider:connection_id`
 * members of score 0, read in order by ZRANGEBYLEX like the main index. Each index is its own key
 * in its own Cluster slot, so nothing here runs a script across keys; instead the order of writes
 * keeps a listing right whatever crashes between them (docs/end-users-and-tags.md):
 *
 * - an entry is added BEFORE the record write that makes the connection match it, and added again
 *   after (a listing that healed it meanwhile cannot lose it);
 * - an entry is removed AFTER the record write or delete that makes it stale, and put back when
 *   the record, read after the removal, matches it again (a write that raced the removal);
 * - a listing checks every candidate against its record, skips one that does not match, and heals
 *   its entry the same way;
 * - every index key a write or delete may leave wrong is first noted in a repair journal (a sorted
 *   set scored by time) and cleared once put in line, so the sweeper repairs what a crash left
 *   behind even where no listing ever walks: an entry never outlives its connection for long.
 */
export class OwnerIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The index keys a connection of this owner belongs to. */
  keysFor(owner: ConnectionOwner): string[] {
    const out: string[] = [];
    if (owner.end_user) out.push(this.keys.endUserIndex(owner.end_user.id));
    for (const [key, value] of Object.entries(owner.tags)) out.push(this.keys.tagIndex(key, value));
    return out;
  }

  /**
   * Before a record write that may change the owner (`change`), or a delete (`'delete'`): notes
   * every index key it may leave wrong in the repair journal, and adds the entries of the owner
   * it writes. Answers what `finish` needs after the write.
   */
  async begin(provider: string, connectionId: string, change: OwnerChange | 'delete'): Promise<OwnerWrite> {
    const before = await this.current(provider, connectionId);
    const beforeKeys = before ? this.keysFor(before.owner) : [];
    const afterKeys =
      change === 'delete' ? [] : this.keysFor(applyOwnerChange(before?.owner ?? NO_OWNER, change));
    const indexKeys = [...new Set([...beforeKeys, ...afterKeys])];
    const journal = await this.journal(provider, connectionId, indexKeys);
    await this.add(provider, connectionId, afterKeys);
    return { provider, connectionId, indexKeys, journal };
  }

  /** After the write or delete: puts the index keys in line, then clears their journal entries. */
  async finish(write: OwnerWrite, alsoKeys: readonly string[] = []): Promise<void> {
    const extra = alsoKeys.filter((key) => !write.indexKeys.includes(key));
    const journal = [...write.journal, ...(await this.journal(write.provider, write.connectionId, extra))];
    await this.reconcile(write.provider, write.connectionId, [...write.indexKeys, ...extra]);
    if (journal.length > 0) await this.redis.zrem(this.keys.ownerRepair(), ...journal);
  }

  /**
   * The sweeper's repair: puts in line the index keys of journal entries older than `graceMs`
   * (their writer crashed or lost Redis before clearing them), at most `limit` a call. The cost
   * follows the entries left behind, not the connections.
   */
  async repair(now: number, limit = 100, graceMs = REPAIR_GRACE_MS): Promise<number> {
    const entries = await this.redis.zrangebyscore(
      this.keys.ownerRepair(),
      '-inf',
      now - graceMs,
      'LIMIT',
      0,
      limit,
    );
    for (const entry of entries) {
      const parsed = parseJournalEntry(entry);
      if (parsed) await this.reconcile(parsed.provider, parsed.connectionId, [parsed.indexKey]);
      await this.redis.zrem(this.keys.ownerRepair(), entry);
    }
    return entries.length;
  }

  /** One journal entry per index key: `[member, index key, nonce]`, the nonce telling two writes apart. */
  private async journal(
    provider: string,
    connectionId: string,
    indexKeys: readonly string[],
  ): Promise<string[]> {
    if (indexKeys.length === 0) return [];
    const nonce = randomBytes(6).toString('base64url');
    const member = memberOf(provider, connectionId);
    const entries = indexKeys.map((key) => JSON.stringify([member, key, nonce]));
    const now = Date.now();
    await this.redis.zadd(this.keys.ownerRepair(), ...entries.flatMap((e) => [now, e]));
    return entries;
  }

  /** Before a record write: the entries of the owner it writes. */
  async add(provider: string, connectionId: string, indexKeys: readonly string[]): Promise<void> {
    const member = memberOf(provider, connectionId);
    // One command per key (not a pipeline or MULTI): in Cluster each key may sit on another node.
    await Promise.all(indexKeys.map((key) => this.redis.zadd(key, 'NX', 0, member)));
  }

  /** The owner the record holds now and its version, or null when there is no record. */
  async current(
    provider: string,
    connectionId: string,
  ): Promise<{ version: number; generation: string; owner: ConnectionOwner } | null> {
    const [version, generation, endUser, tags] = await this.redis.hmget(
      this.keys.connection(provider, connectionId),
      'version',
      'gen',
      'end_user',
      'tags',
    );
    if (!version) return null;
    return {
      version: Number(version),
      generation: generation ?? '',
      owner: { end_user: decodeEndUser(endUser ?? undefined), tags: decodeTags(tags ?? undefined) },
    };
  }

  /**
   * After a record write or delete: puts each of `indexKeys` in line with the record as it is now.
   * A removed entry is put back when the record, read again after the removal, matches it: a
   * write that landed between the two reads added its entries before itself and after, so either
   * this second read sees it or its own later add restores the entry.
   */
  async reconcile(provider: string, connectionId: string, indexKeys: readonly string[]): Promise<void> {
    if (indexKeys.length === 0) return;
    const member = memberOf(provider, connectionId);
    const unique = [...new Set(indexKeys)];
    const now = await this.current(provider, connectionId);
    const wanted = new Set(now ? this.keysFor(now.owner) : []);
    const stale = unique.filter((key) => !wanted.has(key));
    await Promise.all([
      ...unique.filter((key) => wanted.has(key)).map((key) => this.redis.zadd(key, 'NX', 0, member)),
      ...stale.map((key) => this.redis.zrem(key, member)),
    ]);
    if (stale.length === 0) return;
    const again = await this.current(provider, connectionId);
    if (!again) return;
    const back = new Set(this.keysFor(again.owner));
    await this.add(
      provider,
      connectionId,
      stale.filter((key) => back.has(key)),
    );
  }

  /**
   * A page of the connections that match every filter, in `provider:connection_id` order and paged
   * by the same cursor as the main listing. Walks the smallest of the filters' indexes from the
   * cursor and checks each candidate's record, so the cost grows with that index's entries after
   * the cursor, never with all connections.
   */
  async list(
    filter: OwnerFilter,
    cursor: string | undefined,
    limit: number,
    read: ReadRecord,
  ): Promise<OwnerPage> {
    const indexKeys = this.keysFor({
      end_user: filter.endUserId === undefined ? null : { id: filter.endUserId },
      tags: Object.fromEntries(filter.tags ?? []),
    });
    // Two filters on one tag key with different values can never both match.
    const sameKeyTwice = new Set((filter.tags ?? []).map(([k]) => k)).size !== (filter.tags ?? []).length;
    if (indexKeys.length === 0 || sameKeyTwice) return { connections: [], nextCursor: null };
    const floor = filter.provider ? `${filter.provider}:` : '';
    let min = floor ? `[${floor}` : '-';
    if (cursor && cursor >= floor) min = `(${cursor}`;
    const max = floor ? `[${filter.provider};` : '+'; // ';' sorts right after ':'

    const counts = await Promise.all(indexKeys.map((key) => this.redis.zlexcount(key, min, max)));
    const smallest = counts.indexOf(Math.min(...counts));
    if (counts[smallest] === 0) return { connections: [], nextCursor: null };
    const walk = indexKeys[smallest]!;

    const connections: StoredConnection[] = [];
    let more = false;
    let exhausted = false;
    while (!more && !exhausted) {
      // One match more than the page tells whether anything follows, so the last page already
      // answers next_cursor null.
      const want = Math.min(limit + 1 - connections.length, 1000);
      const members = await this.redis.zrangebylex(walk, min, max, 'LIMIT', 0, want);
      exhausted = members.length < want;
      if (members.length === 0) break;
      const records = await Promise.all(
        members.map((m) => {
          const parsed = parseMember(m);
          return parsed ? read(parsed.provider, parsed.connectionId) : Promise.resolve(null);
        }),
      );
      for (let i = 0; i < members.length && !more; i++) {
        const record = records[i];
        const owner = record ? ownerOf(record) : null;
        if (!record || !owner || !this.keysFor(owner).includes(walk)) {
          this.heal(members[i]!, walk);
        } else if (ownerMatches(owner, filter)) {
          if (connections.length < limit) connections.push(record);
          else more = true;
        }
        min = `(${members[i]!}`;
      }
    }
    const last = connections[connections.length - 1];
    return {
      connections,
      nextCursor: more && last ? memberOf(last.provider, last.connection_id) : null,
    };
  }

  /** The journal entries waiting, for a metric or an operator's look. */
  async pendingRepairs(): Promise<number> {
    return this.redis.zcard(this.keys.ownerRepair());
  }

  /** An entry whose record no longer matches it: put in line, in the background. */
  private heal(member: string, indexKey: string): void {
    const parsed = parseMember(member);
    const done = parsed
      ? this.reconcile(parsed.provider, parsed.connectionId, [indexKey])
      : this.redis.zrem(indexKey, member);
    void Promise.resolve(done).catch(() => undefined);
  }
}

function parseJournalEntry(
  entry: string,
): { provider: string; connectionId: string; indexKey: string } | undefined {
  try {
    const value: unknown = JSON.parse(entry);
    if (!Array.isArray(value) || typeof value[0] !== 'string' || typeof value[1] !== 'string')
      return undefined;
    const parsed = parseMember(value[0]);
    return parsed ? { ...parsed, indexKey: value[1] } : undefined;
  } catch {
    return undefined;
  }
}
