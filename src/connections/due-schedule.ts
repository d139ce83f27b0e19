import { APPEND_SLACK, CHUNK_MAX, CHUNK_OF, FIND_CHUNK } from './listing-index';
import { LegacyPresence } from './legacy-presence';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

/**
 * After CHUNK_OF: `refreshMin(b)` puts chunk b's soonest score in the due directory (E), or takes
 * an emptied chunk out of both directories (the first one, bound '', stays in D); `bytesLess`
 * compares as Redis orders members (bytes, then length), never by Lua's locale-bound `<`.
 */
const HELPERS = `
local function refreshMin(b)
  local first = redis.call('ZRANGE', P .. b, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', E, first[2], b)
  else
    redis.call('ZREM', E, b)
    if b ~= '' then redis.call('ZREM', D, b) end
  end
end
local function bytesLess(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
`;

/**
 * Schedules ARGV[3..] (score, member pairs) with ZADD's option ARGV[2] ('' none, 'LT' only ever
 * earlier, 'NX' only when absent). A chunk grown past CHUNK_MAX gives the upper half of its members (by member, not by
 * score) to a new chunk. KEYS: the member directory, the due directory; ARGV[1] the chunk prefix.
 */
const SET_SCRIPT = `
local D, E, P = KEYS[1], KEYS[2], ARGV[1]
${CHUNK_OF}
${HELPERS}
for i = 3, #ARGV, 2 do
  local member = ARGV[i + 1]
  local b = chunkOf(member)
  local chunk = P .. b
  if ARGV[2] ~= '' then redis.call('ZADD', chunk, ARGV[2], ARGV[i], member)
  else redis.call('ZADD', chunk, ARGV[i], member) end
  if redis.call('ZCARD', chunk) > ${CHUNK_MAX} then
    local all = redis.call('ZRANGE', chunk, 0, -1, 'WITHSCORES')
    local entries = {}
    for j = 1, #all, 2 do entries[#entries + 1] = { all[j], all[j + 1] } end
    table.sort(entries, function(x, y) return bytesLess(x[1], y[1]) end)
    -- In halves; a member added at the end by member order (growing ids) splits right there.
    local half = math.floor(#entries / 2) + 1
    for j = #entries - ${APPEND_SLACK}, #entries do
      if entries[j][1] == member then half = math.max(j, 2) end
    end
    local upper = entries[half][1]
    local moved, gone = {}, {}
    for j = half, #entries do
      moved[#moved + 1] = entries[j][2]; moved[#moved + 1] = entries[j][1]
      gone[#gone + 1] = entries[j][1]
    end
    redis.call('ZADD', P .. upper, unpack(moved))
    redis.call('ZREM', chunk, unpack(gone))
    redis.call('ZADD', D, 0, upper)
    refreshMin(upper)
  end
  refreshMin(b)
end
return 1
`;

/** Unschedules ARGV[2..]. */
const REMOVE_SCRIPT = `
local D, E, P = KEYS[1], KEYS[2], ARGV[1]
${CHUNK_OF}
${HELPERS}
for i = 2, #ARGV do
  local b = chunkOf(ARGV[i])
  if redis.call('ZREM', P .. b, ARGV[i]) == 1 then refreshMin(b) end
end
return 1
`;

/** For each of ARGV[2..], its score, or false when not scheduled. */
const SCORES_SCRIPT = `
local D, P = KEYS[1], ARGV[1]
${FIND_CHUNK}
local out = {}
for i = 2, #ARGV do
  local b = findChunk(ARGV[i])
  out[#out + 1] = b and redis.call('ZSCORE', P .. b, ARGV[i]) or false
end
return out
`;

/**
 * Up to ARGV[3] entries due at ARGV[2], soonest first, as member, score pairs. Only chunks with
 * something due are read (the due directory holds each chunk's soonest score), and of those the
 * ARGV[3] soonest, which hold the ARGV[3] soonest entries: the cost follows the due work.
 */
const DUE_SCRIPT = `
local E, P = KEYS[2], ARGV[1]
local now, limit = ARGV[2], tonumber(ARGV[3])
local chunks = redis.call('ZRANGEBYSCORE', E, '-inf', now, 'LIMIT', 0, limit)
local entries = {}
for _, b in ipairs(chunks) do
  local got = redis.call('ZRANGEBYSCORE', P .. b, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for j = 1, #got, 2 do entries[#entries + 1] = { got[j], got[j + 1] } end
end
table.sort(entries, function(x, y) return tonumber(x[2]) < tonumber(y[2]) end)
local out = {}
for j = 1, math.min(limit, #entries) do out[#out + 1] = entries[j][1]; out[#out + 1] = entries[j][2] end
return out
`;

/** How many entries are due at ARGV[2], counted in the chunks with something due. */
const COUNT_DUE_SCRIPT = `
local E, P = KEYS[2], ARGV[1]
local n = 0
for _, b in ipairs(redis.call('ZRANGEBYSCORE', E, '-inf', ARGV[2])) do
  n = n + redis.call('ZCOUNT', P .. b, '-inf', ARGV[2])
end
return n
`;

interface ScheduleCommands {
  obScheduleSet(dir: string, due: string, prefix: string, mode: string, ...pairs: string[]): Promise<number>;
  obScheduleRemove(dir: string, due: string, prefix: string, ...members: string[]): Promise<number>;
  obScheduleScores(
    dir: string,
    due: string,
    prefix: string,
    ...members: string[]
  ): Promise<Array<string | null>>;
  obScheduleDue(dir: string, due: string, prefix: string, now: string, limit: string): Promise<string[]>;
  obScheduleCountDue(dir: string, due: string, prefix: string, now: string): Promise<number>;
}

/**
 * The due-work schedule: `provider:connection_id` members scored by when their work is due (ms).
 * Kept as small sorted sets ("chunks", each a compact listpack, at most CHUNK_MAX members) split
 * by member range as the listing index is, so a member's chunk follows from the member alone;
 * beside the member directory, a due directory scores each chunk by its soonest entry, so finding
 * due work reads only chunks with due work. About 100 B less per connection than one big sorted
 * set. All keys share one hash tag: each script runs in one Cluster slot, as the single key did.
 *
 * The single sorted set of earlier versions (`RedisKeys.legacySchedule`) is still read (its due
 * entries merged in), emptied of a member whenever that member is scheduled or unscheduled here,
 * and moved over by `migrateLegacy` (run by the periodic repair).
 */
export class DueSchedule {
  private readonly scripts: ScheduleCommands;
  private readonly legacy: LegacyPresence;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    redis.defineCommand('obScheduleSet', { numberOfKeys: 2, lua: SET_SCRIPT });
    redis.defineCommand('obScheduleRemove', { numberOfKeys: 2, lua: REMOVE_SCRIPT });
    redis.defineCommand('obScheduleScores', { numberOfKeys: 2, lua: SCORES_SCRIPT });
    redis.defineCommand('obScheduleDue', { numberOfKeys: 2, lua: DUE_SCRIPT });
    redis.defineCommand('obScheduleCountDue', { numberOfKeys: 2, lua: COUNT_DUE_SCRIPT });
    this.scripts = redis as unknown as ScheduleCommands;
    this.legacy = new LegacyPresence(redis, () => keys.legacySchedule());
  }

  private get where(): [string, string, string] {
    return [this.keys.scheduleDirectory(), this.keys.scheduleDue(), this.keys.scheduleChunkPrefix()];
  }

  /**
   * Schedules `member` at `at`; 'LT' only when sooner than its entry, 'NX' only when it has none
   * (as ZADD's options).
   */
  async set(member: string, at: number, mode: '' | 'LT' | 'NX' = ''): Promise<void> {
    // Only LT needs the older set's entry first; once a background check found that set gone,
    // not even that (see LegacyPresence).
    if (mode === 'LT' && this.legacy.mayHoldEntries()) {
      // A sooner entry left in the older set counts: the earlier of the two is kept here.
      const legacy = await this.redis.zscore(this.keys.legacySchedule(), member);
      if (legacy !== null && Number(legacy) < at) at = Number(legacy);
    }
    // The older set's entry goes in the same round trip, after (one connection runs them in order).
    await Promise.all([
      this.scripts.obScheduleSet(...this.where, mode, String(at), member),
      mode !== 'NX' ? this.redis.zrem(this.keys.legacySchedule(), member) : undefined,
    ]);
  }

  async remove(...members: string[]): Promise<void> {
    if (members.length === 0) return;
    await Promise.all([
      this.scripts.obScheduleRemove(...this.where, ...members),
      this.redis.zrem(this.keys.legacySchedule(), ...members),
    ]);
  }

  /** For each member, when it is due, or null when it is not scheduled. */
  async scores(members: string[]): Promise<Array<number | null>> {
    if (members.length === 0) return [];
    const [here, legacy] = await Promise.all([
      this.scripts.obScheduleScores(...this.where, ...members),
      this.redis.zmscore(this.keys.legacySchedule(), ...members),
    ]);
    return members.map((_, i) => {
      const value = here[i] ?? legacy[i] ?? null;
      return value === null ? null : Number(value);
    });
  }

  /** Up to `limit` entries due at `now`, soonest first. */
  async due(now: number, limit: number): Promise<Array<{ member: string; at: number }>> {
    const [here, legacy] = await Promise.all([
      this.scripts.obScheduleDue(...this.where, String(now), String(limit)),
      this.redis.zrangebyscore(this.keys.legacySchedule(), '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit),
    ]);
    const out: Array<{ member: string; at: number }> = [];
    for (const flat of [here, legacy])
      for (let i = 0; i + 1 < flat.length; i += 2) out.push({ member: flat[i]!, at: Number(flat[i + 1]) });
    if (legacy.length === 0) return out;
    return out.sort((a, b) => a.at - b.at).slice(0, limit);
  }

  async countDue(now: number): Promise<number> {
    const [here, legacy] = await Promise.all([
      this.scripts.obScheduleCountDue(...this.where, String(now)),
      this.redis.zcount(this.keys.legacySchedule(), '-inf', now),
    ]);
    return here + legacy;
  }

  /** Moves up to `batch` entries of the legacy set into the chunks; answers how many it moved. */
  async migrateLegacy(batch = 500): Promise<number> {
    const flat = await this.redis.zrange(this.keys.legacySchedule(), 0, batch - 1, 'WITHSCORES');
    if (flat.length === 0) return 0;
    // LT: an entry scheduled here meanwhile (by a write after the upgrade) is kept when sooner.
    const pairs: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push(flat[i + 1]!, flat[i]!);
    await this.scripts.obScheduleSet(...this.where, 'LT', ...pairs);
    const members = pairs.filter((_, i) => i % 2 === 1);
    await this.redis.zrem(this.keys.legacySchedule(), ...members);
    return members.length;
  }
}
