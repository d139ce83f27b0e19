import { hashToken } from './connect-session-store';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

/**
 * What a browser flow keeps in Redis beside its session, shared by every process: the tries of an
 * API-key form. Only hashes of flow ids are used as keys, like `state`.
 */
export class FlowStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /**
   * Takes one try of a flow's API-key form and answers its number (1 for the first). Atomic
   * across processes, so a burst of submissions cannot all pass a check made before any counts.
   */
  async takeKeyTry(flowId: string): Promise<number> {
    const key = this.keys.keyTries(hashToken(flowId));
    // The key exists with its TTL before it is counted: no counter outlives its flow.
    await this.redis.set(key, '0', 'EX', this.ttlSeconds, 'NX');
    return this.redis.incr(key);
  }

  /** Gives a try back: the key was not judged (the check failed), so it is no guess spent. */
  async returnKeyTry(flowId: string): Promise<void> {
    await this.redis.decr(this.keys.keyTries(hashToken(flowId)));
  }
}
