import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

/**
 * A chunk splits in two above this many members. Redis keeps a sorted set of at most
 * `zset-max-listpack-entries` (128 by default) members of at most `zset-max-listpack-value` (64 B)
 * as one compact listpack, about 25 B per `provider:connection_id` member, where one big sorted
 * set (a skiplist and a dict) costs about 130 B per member.
 */
export const CHUNK_MAX = 120;

/** A member added within this many of a full chunk's end is taken as an append (see ADD_SCRIPT). */
export const APPEND_SLACK = 8;

/**
 * The bound of the chunk a member falls under: the greatest bound at or below it, nil while the
 * directory is empty. Expects D (directory key) as a local.
 */
export const FIND_CHUNK = `
local function findChunk(member)
  return redis.call('ZREVRANGEBYLEX', D, '[' .. member, '-', 'LIMIT', 0, 1)[1]
end
`;

/**
 * Finds the chunk a member belongs in, making the first one (bound '', below everything) when the
 * directory is empty. Expects P (chunk key prefix) and D (directory key) as locals.
 */
export const CHUNK_OF = `${FIND_CHUNK}
local function chunkOf(member)
  local b = findChunk(member)
  if not b then
    redis.call('ZADD', D, 0, '')
    b = ''
  end
  return b
end
`;

/**
 * Adds ARGV[2..] (KEYS[1] the directory, ARGV[1] the chunk key prefix); a chunk grown past
 * CHUNK_MAX gives its upper half to a new chunk whose bound is that half's first member. Answers
 * how many were new.
 */
const ADD_SCRIPT = `
local D, P = KEYS[1], ARGV[1]
${CHUNK_OF}
local added = 0
for i = 2, #ARGV do
  local b = chunkOf(ARGV[i])
  local chunk = P .. b
  added = added + redis.call('ZADD', chunk, 'NX', 0, ARGV[i])
  if redis.call('ZCARD', chunk) > ${CHUNK_MAX} then
    -- In halves; but a member added at the chunk's end (ids that grow, as counters and times do)
    -- splits right there, or every chunk of such ids would stay half empty.
    local keep = math.floor(${CHUNK_MAX} / 2)
    local rank = redis.call('ZRANK', chunk, ARGV[i])
    if rank >= ${CHUNK_MAX} - ${APPEND_SLACK} then keep = rank end
    local upper = redis.call('ZRANGE', chunk, keep, -1)
    local moved = {}
    for j, m in ipairs(upper) do moved[#moved + 1] = 0; moved[#moved + 1] = m end
    redis.call('ZADD', P .. upper[1], unpack(moved))
    redis.call('ZREMRANGEBYRANK', chunk, keep, -1)
    redis.call('ZADD', D, 0, upper[1])
  end
end
return added
`;

/** Removes ARGV[2..]; an emptied chunk leaves the directory (the first one, bound '', stays). */
const REMOVE_SCRIPT = `
local D, P = KEYS[1], ARGV[1]
${CHUNK_OF}
local removed = 0
for i = 2, #ARGV do
  local b = chunkOf(ARGV[i])
  removed = removed + redis.call('ZREM', P .. b, ARGV[i])
  if b ~= '' and redis.call('EXISTS', P .. b) == 0 then redis.call('ZREM', D, b) end
end
return removed
`;

/** Answers, for each of ARGV[2..], 1 when indexed, else 0. */
const CONTAINS_SCRIPT = `
local D, P = KEYS[1], ARGV[1]
${FIND_CHUNK}
local out = {}
for i = 2, #ARGV do
  local b = findChunk(ARGV[i])
  out[#out + 1] = (b and redis.call('ZSCORE', P .. b, ARGV[i])) and 1 or 0
end
return out
`;

/**
 * Up to ARGV[4] members in [ARGV[2], ARGV[3]] (ZRANGEBYLEX's syntax), in order: from the chunk that
 * holds the start, chunk after chunk, until the page is full or a chunk starts beyond the end. The
 * cost follows the page, never the whole index.
 */
const RANGE_SCRIPT = `
local D, P = KEYS[1], ARGV[1]
local min, max, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
${FIND_CHUNK}
local start = '-'
if min ~= '-' then
  start = findChunk(string.sub(min, 2))
  start = start and ('[' .. start) or '-'
end
local out = {}
while #out < limit do
  -- Only chunks whose bound is within the range (Redis compares: Lua's < follows the locale).
  local bounds = redis.call('ZRANGEBYLEX', D, start, max, 'LIMIT', 0, 16)
  if #bounds == 0 then break end
  for _, b in ipairs(bounds) do
    local got = redis.call('ZRANGEBYLEX', P .. b, min, max, 'LIMIT', 0, limit - #out)
    for _, m in ipairs(got) do out[#out + 1] = m end
    if #out >= limit then return out end
    start = '(' .. b
  end
end
return out
`;

interface IndexCommands {
  obIndexAdd(directory: string, chunkPrefix: string, ...members: string[]): Promise<number>;
  obIndexRemove(directory: string, chunkPrefix: string, ...members: string[]): Promise<number>;
  obIndexContains(directory: string, chunkPrefix: string, ...members: string[]): Promise<number[]>;
  obIndexRange(
    directory: string,
    chunkPrefix: string,
    min: string,
    max: string,
    limit: string,
  ): Promise<string[]>;
}

/**
 * The listing index: every connection as a `provider:connection_id` member, read in byte order a
 * page at a time. Kept as a directory of small sorted sets ("chunks", each a compact listpack)
 * split by member range, instead of one big sorted set: about 100 B less per connection. All its
 * keys share one hash tag, so each script runs in one Cluster slot, as the single key did.
 *
 * The single sorted set of earlier versions (`RedisKeys.legacyIndex`) is still read and emptied:
 * a listing merges it in, every add or remove also drops the member from it, and `migrateLegacy`
 * (run by the periodic repair) moves what is left.
 */
export class ListingIndex {
  private readonly scripts: IndexCommands;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    redis.defineCommand('obIndexAdd', { numberOfKeys: 1, lua: ADD_SCRIPT });
    redis.defineCommand('obIndexRemove', { numberOfKeys: 1, lua: REMOVE_SCRIPT });
    redis.defineCommand('obIndexContains', { numberOfKeys: 1, lua: CONTAINS_SCRIPT });
    redis.defineCommand('obIndexRange', { numberOfKeys: 1, lua: RANGE_SCRIPT });
    this.scripts = redis as unknown as IndexCommands;
  }

  async add(...members: string[]): Promise<void> {
    if (members.length === 0) return;
    // Whatever an older version indexed moves here, once. Both in one round trip: one connection
    // runs them in order, so the member is never out of both (a failed add is put back by the
    // periodic repair, which goes by the records).
    await Promise.all([
      this.scripts.obIndexAdd(this.keys.indexDirectory(), this.keys.indexChunkPrefix(), ...members),
      this.redis.zrem(this.keys.legacyIndex(), ...members),
    ]);
  }

  async remove(...members: string[]): Promise<void> {
    if (members.length === 0) return;
    await Promise.all([
      this.scripts.obIndexRemove(this.keys.indexDirectory(), this.keys.indexChunkPrefix(), ...members),
      this.redis.zrem(this.keys.legacyIndex(), ...members),
    ]);
  }

  /** For each member, whether it is indexed (here or in the legacy set). */
  async contains(members: string[]): Promise<boolean[]> {
    if (members.length === 0) return [];
    const [here, legacy] = await Promise.all([
      this.scripts.obIndexContains(this.keys.indexDirectory(), this.keys.indexChunkPrefix(), ...members),
      this.redis.zmscore(this.keys.legacyIndex(), ...members),
    ]);
    return members.map((_, i) => here[i] === 1 || legacy[i] !== null);
  }

  /**
   * Up to `limit` members in [min, max] (ZRANGEBYLEX's syntax), in byte order, from the chunks and
   * from the legacy set, merged.
   */
  async range(min: string, max: string, limit: number): Promise<string[]> {
    const [here, legacy] = await Promise.all([
      this.scripts.obIndexRange(
        this.keys.indexDirectory(),
        this.keys.indexChunkPrefix(),
        min,
        max,
        String(limit),
      ),
      this.redis.zrangebylex(this.keys.legacyIndex(), min, max, 'LIMIT', 0, limit),
    ]);
    if (legacy.length === 0) return here;
    const merged = [...new Set([...here, ...legacy])].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    return merged.slice(0, limit);
  }

  /** Moves up to `batch` members of the legacy set into the chunks; answers how many it moved. */
  async migrateLegacy(batch = 500): Promise<number> {
    const members = await this.redis.zrange(this.keys.legacyIndex(), 0, batch - 1);
    if (members.length > 0) await this.add(...members);
    return members.length;
  }
}
