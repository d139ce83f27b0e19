import { ConnectionOwner, decodeEndUser, decodeTags, ownerMatches, ownerOf } from './connection-owner';
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
 *   its entry the same way.
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
  ): Promise<{ version: number; owner: ConnectionOwner } | null> {
    const [version, endUser, tags] = await this.redis.hmget(
      this.keys.connection(provider, connectionId),
      'version',
      'end_user',
      'tags',
    );
    if (!version) return null;
    return {
      version: Number(version),
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

  /** An entry whose record no longer matches it: put in line, in the background. */
  private heal(member: string, indexKey: string): void {
    const parsed = parseMember(member);
    const done = parsed
      ? this.reconcile(parsed.provider, parsed.connectionId, [indexKey])
      : this.redis.zrem(indexKey, member);
    void Promise.resolve(done).catch(() => undefined);
  }
}
