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

  lock(provider: string, connectionId: string): string {
    return `${this.prefix}{${provider}:${connectionId}}:lock`;
  }

  /** All connections, as `provider:connection_id` members of score 0, ordered for paging. */
  index(): string {
    return `${this.prefix}connections`;
  }

  /** Due background work: `provider:connection_id` members scored by when they are due (ms). */
  schedule(): string {
    return `${this.prefix}schedule`;
  }

  connectSession(tokenHash: string): string {
    return `${this.prefix}connect:${tokenHash}`;
  }

  usedState(stateHash: string): string {
    return `${this.prefix}state:${stateHash}`;
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
