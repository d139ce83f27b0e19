/**
 * Every key of the broker, in one place. A connection's keys share the Cluster hash tag
 * `{provider:connection_id}`, so a script touching them stays in one slot; the tag also lets an
 * operator find every key of one connection.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  connection(provider: string, connectionId: string): string {
    return `${this.prefix}{${provider}:${connectionId}}:conn`;
  }

  /**
   * The sealed tokens, a string beside the hash: kept out of it so the hash's values all stay
   * under `hash-max-listpack-value` (64 B) and Redis keeps it as a compact listpack.
   */
  sealed(provider: string, connectionId: string): string {
    return `${this.prefix}{${provider}:${connectionId}}:sealed`;
  }

  /** The connection a record key (see `connection`) belongs to, or undefined for another key. */
  parseConnectionKey(key: string): { provider: string; connectionId: string } | undefined {
    if (!key.startsWith(`${this.prefix}{`) || !key.endsWith('}:conn')) return undefined;
    return parseMember(key.slice(this.prefix.length + 1, -'}:conn'.length));
  }

  lock(provider: string, connectionId: string): string {
    return `${this.prefix}{${provider}:${connectionId}}:lock`;
  }

  /**
   * The listing index's directory: the lower bound of each chunk, as members of score 0 (see
   * ListingIndex). Its keys share the hash tag `{connections}`, so a script over them stays in one
   * Cluster slot.
   */
  indexDirectory(): string {
    return `${this.prefix}{connections}:dir`;
  }

  /** The listing index's chunk with lower bound `b` is this prefix followed by `b`. */
  indexChunkPrefix(): string {
    return `${this.prefix}{connections}:c:`;
  }

  /**
   * The listing index as versions before ListingIndex kept it: one sorted set of every
   * `provider:connection_id`, score 0. Still read, and emptied into the chunks.
   */
  legacyIndex(): string {
    return `${this.prefix}connections`;
  }

  /**
   * The due-work schedule's member directory: the lower bound of each chunk, score 0 (see
   * DueSchedule). Its keys share the hash tag `{schedule}`: a script over them stays in one slot.
   */
  scheduleDirectory(): string {
    return `${this.prefix}{schedule}:dir`;
  }

  /** The due-work schedule's due directory: each chunk's lower bound, scored by its soonest entry. */
  scheduleDue(): string {
    return `${this.prefix}{schedule}:due`;
  }

  /** The due-work schedule's chunk with lower bound `b` is this prefix followed by `b`. */
  scheduleChunkPrefix(): string {
    return `${this.prefix}{schedule}:c:`;
  }

  /**
   * Due background work as versions before DueSchedule kept it: one sorted set of
   * `provider:connection_id` members scored by when they are due (ms). Still read, and emptied.
   */
  legacySchedule(): string {
    return `${this.prefix}schedule`;
  }

  /**
   * The connections of one end user, as `provider:connection_id` members of score 0 (like
   * `index()`). No hash tag: each owner index sits in a slot of its own, and nothing reads two of
   * them in one command.
   */
  endUserIndex(endUserId: string): string {
    return `${this.prefix}eu:${endUserId}`;
  }

  /** The connections tagged `key: value`; tag keys hold no colon, so the first one splits. */
  tagIndex(key: string, value: string): string {
    return `${this.prefix}tag:${key}:${value}`;
  }

  /**
   * Owner index keys a write or delete may have left wrong, noted before it and cleared after it:
   * `[member, index key, nonce]` JSON members scored by when (ms); the sweeper repairs old ones.
   */
  ownerRepair(): string {
    return `${this.prefix}owner-repair`;
  }

  /** Who runs the periodic SCAN repair of index and schedule now (SET NX PX). */
  repairLease(): string {
    return `${this.prefix}repair-lease`;
  }

  /**
   * A connect link (its token's hash). Its hash tag, the hash's first 16 hex digits, is the flow
   * group of the flow it starts (see `flowGroupOf`): the link is used up and its flow kept by one
   * script, whose keys must share a Cluster slot.
   */
  connectSession(tokenHash: string): string {
    return `${this.prefix}connect:{${flowGroupOf(tokenHash)}}:${tokenHash}`;
  }

  /** A connect link as builds before flow groups stored it (read, never written, across an upgrade). */
  untaggedConnectSession(tokenHash: string): string {
    return `${this.prefix}connect:${tokenHash}`;
  }

  /** A used `state` or form id (its hash), in its flow's group so one script takes and marks it. */
  usedState(group: string, stateHash: string): string {
    return `${this.prefix}state:{${group}}:${stateHash}`;
  }

  /** One browser flow (its `state` or form id's hash), in the group of the link that started it. */
  flow(group: string, flowHash: string): string {
    return `${this.prefix}flow:{${group}}:${flowHash}`;
  }

  /** The binding a just-replaced session cookie (its hash) joins flows to, for a few seconds. */
  flowBindingForward(cookieHash: string): string {
    return `${this.prefix}flowfwd:${cookieHash}`;
  }

  /** Tries taken by one API-key form (its flow id's hash). */
  keyTries(flowHash: string): string {
    return `${this.prefix}keytries:${flowHash}`;
  }

  sessionPrefix(): string {
    return `${this.prefix}sess:`;
  }

  rateLimitPrefix(): string {
    return `${this.prefix}rl:`;
  }

  /**
   * One shard of the audit log: a stream per hash tag, so on a Cluster the log spreads over several
   * slots instead of loading one with every entry (src/audit/audit-log.ts).
   */
  auditShard(index: number): string {
    return `${this.prefix}{audit:${index}}`;
  }

  webhookQueue(): string {
    return `${this.prefix}{webhooks}:queue`;
  }

  webhookPayloads(): string {
    return `${this.prefix}{webhooks}:payloads`;
  }

  /** Delivery id → the token of the lease that may settle it (a fence against a late finisher). */
  webhookLeases(): string {
    return `${this.prefix}{webhooks}:leases`;
  }
}

export function memberOf(provider: string, connectionId: string): string {
  return `${provider}:${connectionId}`;
}

/** Provider ids have no colon, so the first colon splits a member. */
export function parseMember(member: string): { provider: string; connectionId: string } | undefined {
  const i = member.indexOf(':');
  if (i <= 0) return undefined;
  return { provider: member.slice(0, i), connectionId: member.slice(i + 1) };
}

/** The flow group of a connect link: the first 16 hex digits of its token's hash. */
export function flowGroupOf(tokenHash: string): string {
  return tokenHash.slice(0, 16);
}
