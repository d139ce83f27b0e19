import { createHash } from 'node:crypto';
import { randomToken } from '../oauth/random-token';
import { EndUser, Tags } from './connection-owner';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

export interface ConnectSession {
  provider: string;
  connection_id: string;
  return_to?: string;
  scopes?: string[];
  /** Owner fields the flow stores when it completes (docs/end-users-and-tags.md). */
  end_user?: EndUser | null;
  tags?: Tags;
  /** Who asked for the link (the audit log's actor of the connect it leads to). */
  actor?: string;
  expires_at: number;
}

/**
 * Single-use connect links. The token (256 bits) goes to the app's backend; Redis holds only its
 * SHA-256, so a copy of Redis yields no usable link. A flow start uses one up (FlowStore.start).
 */
export class ConnectSessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async create(
    session: Omit<ConnectSession, 'expires_at'>,
    now = Date.now(),
  ): Promise<{ token: string; expiresAt: number }> {
    const token = randomToken(32);
    const expiresAt = now + this.ttlSeconds * 1000;
    const value: ConnectSession = { ...session, expires_at: expiresAt };
    await this.redis.set(
      this.keys.connectSession(hashToken(token)),
      JSON.stringify(value),
      'EX',
      this.ttlSeconds,
    );
    return { token, expiresAt };
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
