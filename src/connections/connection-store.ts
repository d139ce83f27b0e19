import Redis, { Cluster } from 'ioredis';
import { randomToken } from '../oauth/random-token';
import { RedisClient } from './redis-client';
import { ConnectionMeta, StoredConnection } from './connection-record';
import { RedisKeys, memberOf, parseMember } from './redis-keys';
import {
  ConnectionOwner,
  NO_OWNER,
  decodeEndUser,
  decodeTags,
  encodeEndUser,
  encodeTags,
  ownerOf,
} from './connection-owner';
import { DueSchedule } from './due-schedule';
import { ListingIndex } from './listing-index';
import { OwnerFilter, OwnerIndex } from './owner-index';
import { LockClaim, takeLockLua } from './refresh-lock';
import { ReplicaConfirmation, StoreDurability } from './replica-confirmation';

/**
 * Writes a connection's hash (KEYS[1]) and its sealed tokens (KEYS[2]) by compare-and-set on
 * the hash's `version` and `gen` (the record's generation: versions restart after a delete).
 * ARGV: expected version ('*' any, '0' must be absent, n must equal), expected generation (with a
 * version n), mode ('replace' | 'reconnect' | 'patch'), now, the generation a created record gets,
 * then field/value pairs where the value '\0' deletes the field; the `sealed` field goes to KEYS[2],
 * never into the hash. A replace clears both keys but keeps `created_at` and the generation; a
 * reconnect is a replace that also keeps the owner fields (`end_user`, `tags`), read in the same
 * script so no PATCH can land in between. `last_activity_at` equal to the write's `updated_at` is
 * left out (28 B of a typical 250 B hash), since `decode` reads `updated_at` for it; a patch that
 * leaves it out of a hash where it is absent writes the `updated_at` it stood for before moving
 * `updated_at`. Returns { version, existed, end_user, tags } with version -1 on a conflict, -2 when
 * a patch finds no record; the owner fields ('' when absent) only from a reconnect.
 */
const WRITE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'version')
local gen = redis.call('HGET', KEYS[1], 'gen') or ''
local existed = current and 1 or 0
if ARGV[1] ~= '*' then
  if (ARGV[1] == '0' and current) or (ARGV[1] ~= '0' and (current ~= ARGV[1] or gen ~= ARGV[2])) then
    return {-1, existed}
  end
end
if ARGV[3] == 'patch' and not current then return {-2, 0} end
if not current then gen = ARGV[5] end
local created = redis.call('HGET', KEYS[1], 'created_at')
local activity = redis.call('HEXISTS', KEYS[1], 'last_activity_at') == 1
local updated = redis.call('HGET', KEYS[1], 'updated_at')
local kept = {false, false}
if ARGV[3] == 'reconnect' then kept = redis.call('HMGET', KEYS[1], 'end_user', 'tags') end
local whole = ARGV[3] ~= 'patch'
if whole then redis.call('DEL', KEYS[1], KEYS[2]) end
local set = {}
for i = 6, #ARGV, 2 do
  if ARGV[i] == 'last_activity_at' then activity = true end
  if ARGV[i] == 'last_activity_at' and ARGV[i + 1] == ARGV[4] then
    if not whole then redis.call('HDEL', KEYS[1], ARGV[i]) end
  elseif ARGV[i] == 'sealed' then
    if ARGV[i + 1] == '\\0' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[i + 1]) end
  elseif ARGV[i + 1] == '\\0' then
    -- After the DEL of a whole write there is nothing to delete field by field.
    if not whole then redis.call('HDEL', KEYS[1], ARGV[i]) end
  else
    set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
end
if kept[1] then set[#set + 1] = 'end_user'; set[#set + 1] = kept[1] end
if kept[2] then set[#set + 1] = 'tags'; set[#set + 1] = kept[2] end
if not activity and updated and updated ~= ARGV[4] then
  set[#set + 1] = 'last_activity_at'; set[#set + 1] = updated
end
local version = (tonumber(current) or 0) + 1
set[#set + 1] = 'version'; set[#set + 1] = tostring(version)
set[#set + 1] = 'updated_at'; set[#set + 1] = ARGV[4]
set[#set + 1] = 'created_at'; set[#set + 1] = created or ARGV[4]
if gen ~= '' then set[#set + 1] = 'gen'; set[#set + 1] = gen end
redis.call('HSET', KEYS[1], unpack(set))
return {version, existed, kept[1] or '', kept[2] or ''}
`;

/**
 * The hash fields a record is read from, in the order the read scripts answer them. A read answers
 * two values: one JSON array (cjson) of these fields' values (false where absent), and the sealed
 * tokens as they are stored (bytes: cjson would mangle them). One string to parse cost the broker
 * half of what HGETALL's nested reply took, and unlike a separator-joined string it holds any value.
 */
const RECORD_FIELDS = [
  'version',
  'auth_mode',
  'status',
  'scopes',
  'expires_at',
  'created_at',
  'updated_at',
  'last_refreshed_at',
  'last_activity_at',
  'last_error',
  'refresh_failures',
  'next_refresh_at',
  'read_since_refresh',
  'refreshable',
  'key_id',
  'end_user',
  'tags',
  'gen',
] as const;

type RecordField = (typeof RECORD_FIELDS)[number];

/** A field's place in the read scripts' answer, as Lua counts (from 1). */
function fieldIndex(field: RecordField): number {
  return RECORD_FIELDS.indexOf(field) + 1;
}

const READ_RECORD_LUA = `
local v = redis.call('HMGET', KEYS[1], ${RECORD_FIELDS.map((f) => `'${f}'`).join(', ')})
if not v[1] then return false end
local sealed = redis.call('GET', KEYS[2])
`;

/** A connection's hash and sealed tokens in one round trip (the token API's hot path). */
const READ_SCRIPT = `${READ_RECORD_LUA}
return {cjson.encode(v), sealed}
`;

/**
 * Takes the connection's refresh lock (KEYS[3]; ARGV: owner, TTL in ms) and, when taken, reads the
 * record in the same round trip. Answers 0 when someone else holds the lock.
 */
const LOCK_AND_READ_SCRIPT = `
if not ${takeLockLua('KEYS[3]', 'ARGV[1]', 'ARGV[2]')} then return 0 end
${READ_RECORD_LUA}
return {cjson.encode(v), sealed}
`;

/**
 * The token API's read: the record, and, when a caller will refresh it, its refresh lock taken in
 * the same round trip (KEYS[3]; ARGV: owner, TTL in ms, the expiry below which the token is stale,
 * '1' to refresh whatever the expiry). The lock is tried exactly when ConnectionService.getToken
 * goes on to refresh: an active oauth2 record with a refresh token whose token is stale, or forced.
 * Answers the read's array with one more element: whether the lock was taken.
 */
const READ_CLAIMING_SCRIPT = `${READ_RECORD_LUA}
local claimed = false
if (not v[${fieldIndex('status')}] or v[${fieldIndex('status')}] == 'active')
  and (not v[${fieldIndex('auth_mode')}] or v[${fieldIndex('auth_mode')}] == 'oauth2')
  and v[${fieldIndex('refreshable')}] == '1' then
  local expires = tonumber(v[${fieldIndex('expires_at')}])
  if ARGV[4] == '1' or (expires and expires < tonumber(ARGV[3])) then
    claimed = ${takeLockLua('KEYS[3]', 'ARGV[1]', 'ARGV[2]')} and true or false
  end
end
v[#v + 1] = claimed
return {cjson.encode(v), sealed}
`;

/** Removes a connection's hash and sealed tokens and answers what they held. */
const TAKE_SCRIPT = `${READ_RECORD_LUA}
redis.call('DEL', KEYS[1], KEYS[2])
return {cjson.encode(v), sealed}
`;

/**
 * Marks a read without bumping the version: a read is not a write of tokens. ARGV: the sooner
 * next_refresh_at ('' none), the version the read saw ('' any; another version: nothing done),
 * and its generation.
 */
const MARK_READ_SCRIPT = `
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return 0 end
if ARGV[2] ~= '' and (ARGV[2] ~= version or ARGV[3] ~= (redis.call('HGET', KEYS[1], 'gen') or '')) then
  return 0
end
redis.call('HSET', KEYS[1], 'read_since_refresh', '1')
if ARGV[1] ~= '' then
  local next = tonumber(redis.call('HGET', KEYS[1], 'next_refresh_at'))
  if not next or tonumber(ARGV[1]) < next then
    redis.call('HSET', KEYS[1], 'next_refresh_at', ARGV[1])
    return 2
  end
end
return 1
`;

interface ScriptCommands {
  obWrite(
    key: string,
    sealedKey: string,
    ...args: Array<string | Buffer>
  ): Promise<[number, number, string, string]>;
  obTakeBuffer(key: string, sealedKey: string): Promise<RecordReply | null>;
  obReadBuffer(key: string, sealedKey: string): Promise<RecordReply | null>;
  obLockAndReadBuffer(
    key: string,
    sealedKey: string,
    lockKey: string,
    owner: string,
    ttlMs: string,
  ): Promise<RecordReply | 0 | null>;
  obMarkRead(key: string, nextRefreshAt: string, version: string, generation: string): Promise<number>;
  obReadClaimingBuffer(
    key: string,
    sealedKey: string,
    lockKey: string,
    owner: string,
    ttlMs: string,
    staleBefore: string,
    force: string,
  ): Promise<RecordReply | null>;
}

/** What a read script answers (with ioredis' Buffer variant): the JSON of the fields, the sealed bytes. */
type RecordReply = [Buffer, Buffer | null];

export type ConnectionFields = Omit<
  ConnectionMeta,
  'version' | 'generation' | 'created_at' | 'updated_at'
> & {
  sealed: string;
};
export type ConnectionPatch = Partial<ConnectionFields>;

/** What a compare-and-set compares: the version a record was read at, in its generation. */
export type RecordVersion = Pick<StoredConnection, 'version' | 'generation'>;

/** A write's precondition: any record, no record at all, or the record at this version. */
export type WriteExpectation = '*' | 'absent' | RecordVersion;

export interface WriteResult {
  version: number;
  created: boolean;
}

export interface ConnectionPage {
  connections: StoredConnection[];
  nextCursor: string | null;
}

/**
 * The connection records on Redis: per connection a hash of metadata and a string of sealed
 * tokens, an index for listing, a schedule.
 */
export class ConnectionStore {
  private readonly scripts: ScriptCommands;
  private readonly replicas: ReplicaConfirmation;
  /** The end-user and tag indexes, kept in line by every write and delete below. */
  readonly owners: OwnerIndex;
  /** The listing index (see ListingIndex). */
  readonly index: ListingIndex;
  /** The due-work schedule (see DueSchedule). */
  readonly schedule: DueSchedule;

  constructor(
    private readonly redis: RedisClient,
    readonly keys: RedisKeys,
    private readonly durability: StoreDurability = NO_REPLICA_WAIT,
  ) {
    this.replicas = new ReplicaConfirmation(redis, durability);
    this.owners = new OwnerIndex(redis, keys);
    this.index = new ListingIndex(redis, keys);
    this.schedule = new DueSchedule(redis, keys);
    redis.defineCommand('obWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT });
    redis.defineCommand('obTake', { numberOfKeys: 2, lua: TAKE_SCRIPT });
    redis.defineCommand('obRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    redis.defineCommand('obLockAndRead', { numberOfKeys: 3, lua: LOCK_AND_READ_SCRIPT });
    redis.defineCommand('obReadClaiming', { numberOfKeys: 3, lua: READ_CLAIMING_SCRIPT });
    redis.defineCommand('obMarkRead', { numberOfKeys: 1, lua: MARK_READ_SCRIPT });
    this.scripts = redis as unknown as ScriptCommands;
  }

  async read(provider: string, connectionId: string): Promise<StoredConnection | null> {
    const packed = await this.scripts.obReadBuffer(
      this.keys.connection(provider, connectionId),
      this.keys.sealed(provider, connectionId),
    );
    return decode(packed, provider, connectionId);
  }

  /**
   * The token API's read (see READ_CLAIMING_SCRIPT): the record, and whether `claim` was taken
   * because the caller is to refresh it. A stampede's first caller asks the provider after one
   * round trip instead of two, each of which waits behind every other caller's work.
   */
  async readClaiming(
    provider: string,
    connectionId: string,
    claim: LockClaim,
    staleBefore: number,
    force: boolean,
  ): Promise<{ record: StoredConnection | null; claimed: boolean }> {
    const packed = await this.scripts.obReadClaimingBuffer(
      this.keys.connection(provider, connectionId),
      this.keys.sealed(provider, connectionId),
      claim.key,
      claim.owner,
      String(Math.ceil(claim.ttlMs)),
      String(staleBefore),
      force ? '1' : '0',
    );
    if (packed === null) return { record: null, claimed: false };
    const values = JSON.parse(packed[0].toString()) as unknown[];
    return {
      record: decodeValues(values, packed[1], provider, connectionId),
      claimed: values[RECORD_FIELDS.length] === true,
    };
  }

  /**
   * Takes the claimed lock (SET NX PX, see RefreshLock) and reads the record under it, in one
   * round trip: in a stampede, the lock holder's every round trip waits behind the work of all the
   * other callers, before the provider is even asked. Answers null when the lock is held already.
   */
  async lockAndRead(
    provider: string,
    connectionId: string,
    claim: LockClaim,
  ): Promise<{ record: StoredConnection | null } | null> {
    const packed = await this.scripts.obLockAndReadBuffer(
      this.keys.connection(provider, connectionId),
      this.keys.sealed(provider, connectionId),
      claim.key,
      claim.owner,
      String(Math.ceil(claim.ttlMs)),
    );
    if (packed === 0) return null;
    return { record: decode(packed, provider, connectionId) };
  }

  /**
   * Writes the whole record (connect, import); keeps `created_at`. The listing and schedule
   * entries go in before the record and again after it (see `addEntries`); so do the owner
   * index entries (see OwnerIndex.begin).
   */
  async replace(fields: ConnectionFields, now: number, expect: WriteExpectation = '*'): Promise<WriteResult> {
    const next = fields.next_refresh_at ?? null;
    const owner = await this.owners.begin(fields.provider, fields.connection_id, fields);
    const result = await this.entriesFirst(
      () => this.addEntries(fields.provider, fields.connection_id, next, true),
      () => this.write(fields.provider, fields.connection_id, fields, 'replace', now, expect),
    );
    if (result.version > 0) await this.afterWrite(fields.provider, fields.connection_id, next, true);
    await this.owners.finish(owner);
    return result;
  }

  /**
   * Writes the whole record of a connect whose link named no owner: like `replace`, but the owner
   * fields the record holds are kept by the write itself, so nothing is read first (a connect's
   * round trips: docs/architecture.md). Answers the owner kept. Its index entries were added by the
   * write that set them and are added again after this one, beside the listing and schedule entries.
   */
  async reconnect(
    fields: Omit<ConnectionFields, 'end_user' | 'tags'>,
    now: number,
  ): Promise<WriteResult & { owner: ConnectionOwner }> {
    const { provider, connection_id: connectionId } = fields;
    const next = fields.next_refresh_at ?? null;
    const result = await this.entriesFirst(
      () => this.addEntries(provider, connectionId, next, true),
      () => this.write(provider, connectionId, fields, 'reconnect', now, '*'),
    );
    const owner = result.owner ?? NO_OWNER;
    await Promise.all([
      this.afterWrite(provider, connectionId, next, true),
      this.owners.add(provider, connectionId, this.owners.keysFor(owner)),
    ]);
    return { version: result.version, created: result.created, owner };
  }

  /**
   * Changes some fields if the record is still at `expect` (its version, in its generation).
   * Answers the new version, or null when someone else wrote first (or the record is gone).
   */
  async patch(
    provider: string,
    connectionId: string,
    patch: ConnectionPatch,
    now: number,
    expect: WriteExpectation,
  ): Promise<number | null> {
    const owner =
      'end_user' in patch || 'tags' in patch
        ? await this.owners.begin(provider, connectionId, { end_user: patch.end_user, tags: patch.tags })
        : undefined;
    const scheduled = 'next_refresh_at' in patch;
    const result = await this.entriesFirst(
      () =>
        scheduled
          ? this.addEntries(provider, connectionId, patch.next_refresh_at ?? null, false)
          : Promise.resolve(),
      () => this.write(provider, connectionId, patch, 'patch', now, expect),
    );
    if (owner) await this.owners.finish(owner);
    if (result.version < 0) return null;
    if (scheduled) await this.afterWrite(provider, connectionId, patch.next_refresh_at ?? null, false);
    return result.version;
  }

  /**
   * Notes a token API read; moves the schedule earlier when `nextRefreshAt` is sooner. The
   * schedule goes first (ZADD LT: only ever earlier), then the mark: should the schedule's write
   * fail, the record stays unmarked and the next read tries both again; an earlier entry left by
   * a mark that then did not apply is put back by the sweeper, which checks the record.
   */
  async markRead(
    provider: string,
    connectionId: string,
    nextRefreshAt: number | null,
    seen?: RecordVersion,
  ): Promise<void> {
    if (nextRefreshAt !== null)
      await this.schedule.set(memberOf(provider, connectionId), nextRefreshAt, 'LT');
    await this.scripts.obMarkRead(
      this.keys.connection(provider, connectionId),
      nextRefreshAt === null ? '' : String(nextRefreshAt),
      seen === undefined ? '' : String(seen.version),
      seen === undefined ? '' : seen.generation,
    );
  }

  /**
   * Deletes a connection; answers what it held, for revocation. The listing and schedule entries
   * go after the record, so a crash in between leaves only stale entries, which their readers
   * check against the record and drop.
   */
  async take(provider: string, connectionId: string): Promise<StoredConnection | null> {
    const owner = await this.owners.begin(provider, connectionId, 'delete');
    const packed = await this.scripts.obTakeBuffer(
      this.keys.connection(provider, connectionId),
      this.keys.sealed(provider, connectionId),
    );
    if (packed !== null) await this.replicated();
    const member = memberOf(provider, connectionId);
    await Promise.all([this.index.remove(member), this.schedule.remove(member)]);
    const record = decode(packed, provider, connectionId);
    await this.owners.finish(owner, record ? this.owners.keysFor(ownerOf(record)) : []);
    return record;
  }

  /**
   * Drops the listing and schedule entries of a connection found without a record, then looks
   * again: a connect that added its entries before writing its record may have written it
   * meanwhile, and its entries come back (the writer adds them again after its write, too).
   */
  async forgetIfGone(provider: string, connectionId: string): Promise<void> {
    const member = memberOf(provider, connectionId);
    await Promise.all([this.index.remove(member), this.schedule.remove(member)]);
    const record = await this.read(provider, connectionId);
    if (record) await this.afterWrite(provider, connectionId, record.next_refresh_at, true);
  }

  /**
   * A page of connections in `provider:connection_id` order, from the index (ZRANGEBYLEX), never
   * KEYS or a scan of the keyspace. The cursor is the last member answered, opaque to clients.
   */
  async list(
    options: { provider?: string; cursor?: string; limit: number } & OwnerFilter,
  ): Promise<ConnectionPage> {
    if (options.endUserId !== undefined || (options.tags?.length ?? 0) > 0)
      return this.owners.list(options, options.cursor, options.limit, (p, c) => this.read(p, c));
    const floor = options.provider ? `${options.provider}:` : '';
    let min = floor ? `[${floor}` : '-';
    if (options.cursor && options.cursor >= floor) min = `(${options.cursor}`;
    const max = floor ? `[${options.provider};` : '+'; // ';' sorts right after ':'
    const connections: StoredConnection[] = [];
    let last: string | undefined;
    let exhausted = false;
    while (connections.length < options.limit && !exhausted) {
      const want = options.limit - connections.length;
      // One member more than wanted tells whether anything follows, so the page that holds the
      // last connection already answers next_cursor null.
      const ahead = await this.index.range(min, max, want + 1);
      exhausted = ahead.length <= want;
      const members = ahead.slice(0, want);
      const parsed = members.map((m) => parseMember(m));
      const records = await Promise.all(
        parsed.map((p) => (p ? this.read(p.provider, p.connectionId) : Promise.resolve(null))),
      );
      members.forEach((m, i) => {
        const record = records[i];
        const p = parsed[i];
        if (record) connections.push(record);
        else if (p) void this.forgetIfGone(p.provider, p.connectionId).catch(() => undefined);
        else void this.index.remove(m).catch(() => undefined);
        last = m;
      });
      if (last !== undefined) min = `(${last}`;
      if (members.length === 0) exhausted = true;
    }
    return { connections, nextCursor: exhausted || last === undefined ? null : last };
  }

  /** Connections due for background work at `now`, soonest first: cost grows with the due ones only. */
  async due(
    now: number,
    limit: number,
  ): Promise<Array<{ provider: string; connectionId: string; dueAt: number }>> {
    const out: Array<{ provider: string; connectionId: string; dueAt: number }> = [];
    for (const entry of await this.schedule.due(now, limit)) {
      const parsed = parseMember(entry.member);
      if (parsed) out.push({ ...parsed, dueAt: entry.at });
    }
    return out;
  }

  async countDue(now: number): Promise<number> {
    return this.schedule.countDue(now);
  }

  /** Puts the schedule in line with a record (used when the two drifted apart). */
  async syncSchedule(provider: string, connectionId: string, nextRefreshAt: number | null): Promise<void> {
    await this.afterWrite(provider, connectionId, nextRefreshAt, false);
  }

  /**
   * Every record, a page at a time, found by SCAN over the record keys (on every master of a
   * Cluster) rather than from the index: what a crash between a record's write and its index
   * entry would hide from the index is found here.
   */
  async *scan(count = 500): AsyncGenerator<StoredConnection[]> {
    for await (const ids of this.scanIds(count)) {
      const records = await Promise.all(ids.map((id) => this.read(id.provider, id.connectionId)));
      const page = records.filter((r): r is StoredConnection => r !== null);
      if (page.length > 0) yield page;
    }
  }

  /**
   * Puts back the index and schedule entries a record lacks (a crash, or a master outage on
   * Cluster, between the writes of a record and of its entries), going by SCAN, not the index.
   * `stopping` is asked between pages (a shutdown ends it early; what it did stays done).
   */
  async repair(
    stopping: () => boolean = () => false,
  ): Promise<{ records: number; indexAdded: number; scheduleAdded: number }> {
    const totals = { records: 0, indexAdded: 0, scheduleAdded: 0 };
    // An older version's single index set, moved into the chunks (listings read it meanwhile).
    while (!stopping() && (await this.index.migrateLegacy()) > 0);
    while (!stopping() && (await this.schedule.migrateLegacy()) > 0);
    for await (const ids of this.scanIds(500)) {
      if (stopping()) break;
      const members = ids.map((id) => memberOf(id.provider, id.connectionId));
      const [nextAt, indexed, scheduled] = await Promise.all([
        Promise.all(
          ids.map((id) =>
            this.redis.hmget(
              this.keys.connection(id.provider, id.connectionId),
              'version',
              'next_refresh_at',
            ),
          ),
        ),
        this.index.contains(members),
        this.schedule.scores(members),
      ]);
      const adds: Array<Promise<unknown>> = [];
      members.forEach((member, i) => {
        const [version, next] = nextAt[i]!;
        if (!version) return; // deleted meanwhile
        totals.records += 1;
        if (!indexed[i]) {
          totals.indexAdded += 1;
          adds.push(this.index.add(member));
        }
        const due = num(next ?? undefined);
        if (scheduled[i] === null && due !== null) {
          totals.scheduleAdded += 1;
          adds.push(this.schedule.set(member, due, 'NX'));
        }
      });
      await Promise.all(adds);
    }
    return totals;
  }

  /**
   * Takes the right to run `repair` for `ttlMs`, across processes (SET NX PX), so one process of
   * many scans the keyspace per period.
   */
  async claimRepair(ttlMs: number, owner: string): Promise<boolean> {
    return (await this.redis.set(this.keys.repairLease(), owner, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** The connections whose record keys SCAN finds, a batch at a time, each once. */
  private async *scanIds(count: number): AsyncGenerator<Array<{ provider: string; connectionId: string }>> {
    const pattern = `${globEscape(this.keys.prefix)}{*}:conn`;
    const nodes: Array<Pick<Redis, 'scan'>> =
      this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    // SCAN may answer a key twice (the keyspace grows meanwhile): each is handed out once.
    const seen = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
        cursor = next;
        const ids = [];
        for (const key of keys) {
          const id = this.keys.parseConnectionKey(key);
          if (!id || seen.has(key)) continue;
          seen.add(key);
          ids.push(id);
        }
        if (ids.length > 0) yield ids;
      } while (cursor !== '0');
    }
  }

  /**
   * Runs `entries` before `write`. On one connection (standalone, Sentinel) Redis runs commands in
   * the order they were sent, so both go in one round trip (and, with `appendfsync always`, one
   * fsync); on Cluster the entries live on other masters, so their answer is awaited first.
   */
  private async entriesFirst<T>(entries: () => Promise<void>, write: () => Promise<T>): Promise<T> {
    if (this.redis instanceof Cluster) {
      await entries();
      return write();
    }
    const added = entries();
    added.catch(() => undefined); // awaited below, after the write
    const result = await write();
    await added;
    return result;
  }

  /**
   * The entries a write is about to need, added before the record is written: a crash after
   * this leaves an entry without a record, which listing and sweeper check and drop, never a
   * record outside both. Removals wait for `afterWrite`.
   */
  private addEntries(
    provider: string,
    connectionId: string,
    nextRefreshAt: number | null,
    index: boolean,
  ): Promise<void> {
    return this.putEntries(provider, connectionId, nextRefreshAt, index, false);
  }

  /**
   * The entries in line with what was just written, again: a reader that found the entries
   * before the record existed may have dropped them in between (see `forgetIfGone`).
   */
  private afterWrite(
    provider: string,
    connectionId: string,
    nextRefreshAt: number | null,
    index: boolean,
  ): Promise<void> {
    return this.putEntries(provider, connectionId, nextRefreshAt, index, true);
  }

  /** The listing entry (when `index`) and the schedule entry; `unschedule` drops it when nothing is due. */
  private async putEntries(
    provider: string,
    connectionId: string,
    nextRefreshAt: number | null,
    index: boolean,
    unschedule: boolean,
  ): Promise<void> {
    const member = memberOf(provider, connectionId);
    await Promise.all([
      index ? this.index.add(member) : undefined,
      nextRefreshAt !== null
        ? this.schedule.set(member, nextRefreshAt)
        : unschedule
          ? this.schedule.remove(member)
          : undefined,
    ]);
  }

  private async write(
    provider: string,
    connectionId: string,
    fields: ConnectionPatch,
    mode: 'replace' | 'reconnect' | 'patch',
    now: number,
    expect: WriteExpectation,
  ): Promise<WriteResult & { owner?: ConnectionOwner }> {
    const args: Array<string | Buffer> =
      expect === '*'
        ? ['*', '']
        : expect === 'absent'
          ? ['0', '']
          : [String(expect.version), expect.generation];
    args.push(mode, String(now), randomToken(9));
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined || IN_THE_KEY.has(name)) continue;
      const encode = FIELD_ENCODERS[name];
      args.push(
        name,
        encode ? (encode(value as never) ?? '\0') : DEFAULTS[name] === value ? '\0' : encodeField(value),
      );
    }
    const [version, existed, endUser, tags] = await this.scripts.obWrite(
      this.keys.connection(provider, connectionId),
      this.keys.sealed(provider, connectionId),
      ...args,
    );
    if (version > 0) await this.replicated();
    const owner =
      mode === 'reconnect'
        ? { end_user: decodeEndUser(endUser || undefined), tags: decodeTags(tags || undefined) }
        : undefined;
    return { version, created: existed === 0, owner };
  }

  /**
   * With `durability.replicas`, a record write or delete is acknowledged only once a replica holds
   * it (see ReplicaConfirmation): replication is asynchronous, and a failover to a replica without
   * it would bring back a retired refresh token or a deleted connection (docs/redis-topologies.md).
   */
  async replicated(): Promise<void> {
    if (this.durability.replicas > 0) await this.replicas.confirm();
  }
}

const NO_REPLICA_WAIT: StoreDurability = { replicas: 0, timeoutMs: 0 };

/** A key prefix as a SCAN pattern that matches it literally. */
function globEscape(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Fields left out of the hash while they hold the value `decode` gives an absent field (as false
 * booleans already are): a smaller hash stays in a smaller listpack allocation, about 64 B less
 * per connection.
 */
const DEFAULTS: Record<string, unknown> = { auth_mode: 'oauth2', status: 'active', refresh_failures: 0 };

/**
 * Fields the record's key already names, so the hash does not repeat them (about 45 B a
 * connection): `decode` takes both from the key. Records written before this hold them; no reader
 * looks at them.
 */
const IN_THE_KEY = new Set(['provider', 'connection_id']);

/**
 * Fields with an encoding of their own; `undefined` leaves the field out. The owner fields are
 * compact JSON, left out when empty (see connection-owner.ts); scopes are space-separated where
 * they can be; the sealed tokens go as their bytes, one a char (see Sealed): a string would go out
 * as UTF-8.
 */
const FIELD_ENCODERS: Record<string, (value: never) => string | Buffer | undefined> = {
  end_user: encodeEndUser,
  tags: encodeTags,
  scopes: encodeScopes,
  sealed: (value: string | null) => (value === null ? undefined : Buffer.from(value, 'latin1')),
};

function encodeField(value: unknown): string {
  if (value === null) return '\0';
  if (typeof value === 'boolean') return value ? '1' : '\0';
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  return JSON.stringify(value);
}

function num(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * Scopes as RFC 6749 §3.3 spells them, space-separated: shorter than a JSON array by the quotes
 * and commas (about 11 B a record, enough to keep a typical hash a size class smaller). Scopes
 * that a space list cannot hold as they are (empty, or a character outside scope-token's, or a
 * first one starting with `[`) stay a JSON array, the form every older record holds.
 */
function encodeScopes(scopes: readonly string[]): string {
  const plain = scopes.length > 0 && scopes.every((s) => SCOPE_TOKEN.test(s)) && !scopes[0]!.startsWith('[');
  return plain ? scopes.join(' ') : JSON.stringify(scopes);
}

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** A damaged scopes field reads as none rather than failing the whole record. */
function parseScopes(value: string | undefined): string[] {
  if (!value) return [];
  if (!value.startsWith('[')) return value.split(' ');
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * A record as the connection it was read for: `provider` and `connection_id` come from the key,
 * never from the hash's own fields, so a record copied under another key is opened (AAD), refreshed
 * and revoked as that other connection, and its sealed tokens fail to open there. `packed` is what
 * the read scripts answer (see RECORD_FIELDS); no sealed tokens read as '', which fails to open.
 */
function decode(packed: RecordReply | null, provider: string, connectionId: string): StoredConnection | null {
  return packed === null
    ? null
    : decodeValues(JSON.parse(packed[0].toString()) as unknown[], packed[1], provider, connectionId);
}

function decodeValues(
  values: unknown[],
  sealed: Buffer | null,
  provider: string,
  connectionId: string,
): StoredConnection | null {
  const hash = {} as Record<RecordField, string | undefined>;
  RECORD_FIELDS.forEach((field, i) => {
    const value = values[i];
    hash[field] = typeof value === 'string' ? value : undefined;
  });
  if (!hash.version) return null;
  let lastError = null;
  try {
    lastError = hash.last_error ? JSON.parse(hash.last_error) : null;
  } catch {
    // a damaged metadata field reads as empty rather than failing the whole record
  }
  return {
    provider,
    connection_id: connectionId,
    auth_mode: hash.auth_mode === 'api_key' ? 'api_key' : 'oauth2',
    status: hash.status === 'reauthorization_required' ? 'reauthorization_required' : 'active',
    scopes: parseScopes(hash.scopes),
    expires_at: num(hash.expires_at),
    created_at: num(hash.created_at) ?? 0,
    updated_at: num(hash.updated_at) ?? 0,
    last_refreshed_at: num(hash.last_refreshed_at),
    last_activity_at: num(hash.last_activity_at) ?? num(hash.updated_at) ?? 0,
    last_error: lastError,
    refresh_failures: num(hash.refresh_failures) ?? 0,
    next_refresh_at: num(hash.next_refresh_at),
    read_since_refresh: hash.read_since_refresh === '1',
    refreshable: hash.refreshable === '1',
    key_id: hash.key_id ?? '',
    end_user: decodeEndUser(hash.end_user),
    tags: decodeTags(hash.tags),
    version: num(hash.version) ?? 0,
    generation: hash.gen ?? '',
    // One char a byte (see Sealed): binary data as stored, or the base64 text of earlier versions.
    sealed: sealed ? sealed.toString('latin1') : '',
  };
}
