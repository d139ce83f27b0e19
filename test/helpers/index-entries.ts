import Redis, { Cluster } from 'ioredis';

/**
 * Whether a member sits in the listing index (src/connections/listing-index.ts): in the chunk
 * under the greatest directory bound at or below it, or in the single set older versions kept.
 */
export async function isIndexed(redis: Redis | Cluster, prefix: string, member: string): Promise<boolean> {
  const [bound] = await redis.zrevrangebylex(`${prefix}{connections}:dir`, `[${member}`, '-', 'LIMIT', 0, 1);
  const [inChunk, inLegacy] = await Promise.all([
    bound === undefined ? null : redis.zscore(`${prefix}{connections}:c:${bound}`, member),
    redis.zscore(`${prefix}connections`, member),
  ]);
  return inChunk !== null || inLegacy !== null;
}

/** Drops a member from the listing index, as a crash before its entry was written would leave it. */
export async function unindex(redis: Redis | Cluster, prefix: string, member: string): Promise<void> {
  const [bound] = await redis.zrevrangebylex(`${prefix}{connections}:dir`, `[${member}`, '-', 'LIMIT', 0, 1);
  if (bound !== undefined) await redis.zrem(`${prefix}{connections}:c:${bound}`, member);
  await redis.zrem(`${prefix}connections`, member);
}

/**
 * When a member is due on the due-work schedule (src/connections/due-schedule.ts), or null: in the
 * chunk under the greatest directory bound at or below it, or in the single set older versions kept.
 */
export async function scheduledAt(
  redis: Redis | Cluster,
  prefix: string,
  member: string,
): Promise<number | null> {
  const [bound] = await redis.zrevrangebylex(`${prefix}{schedule}:dir`, `[${member}`, '-', 'LIMIT', 0, 1);
  const [inChunk, inLegacy] = await Promise.all([
    bound === undefined ? null : redis.zscore(`${prefix}{schedule}:c:${bound}`, member),
    redis.zscore(`${prefix}schedule`, member),
  ]);
  const value = inChunk ?? inLegacy;
  return value === null ? null : Number(value);
}

/** Takes a member off the due-work schedule, as a crash before its entry was written would leave it. */
export async function unschedule(redis: Redis | Cluster, prefix: string, member: string): Promise<void> {
  const [bound] = await redis.zrevrangebylex(`${prefix}{schedule}:dir`, `[${member}`, '-', 'LIMIT', 0, 1);
  if (bound !== undefined) await redis.zrem(`${prefix}{schedule}:c:${bound}`, member);
  await redis.zrem(`${prefix}schedule`, member);
}

/** How many members the due-work schedule holds: its chunks' sizes, and the older single set's. */
export async function scheduledCount(redis: Redis | Cluster, prefix: string): Promise<number> {
  const bounds = await redis.zrange(`${prefix}{schedule}:dir`, 0, -1);
  const sizes = await Promise.all(bounds.map((b) => redis.zcard(`${prefix}{schedule}:c:${b}`)));
  return sizes.reduce((n, x) => n + x, 0) + (await redis.zcard(`${prefix}schedule`));
}
