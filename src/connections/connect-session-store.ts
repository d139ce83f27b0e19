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
  expires_at: number;
}

/**
 * Consumes a connect link, but only under its own provider: a link opened under another
 * provider's path stays unused. Answers the session JSON, 'wrong_provider', or nil.
 */
const CONSUME_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local ok, session = pcall(cjson.decode, value)
if not ok or session.provider ~= ARGV[1] then return 'wrong_provider' end
redis.call('DEL', KEYS[1])
return value
`;

export type ConsumeResult =
  { ok: true; session: ConnectSession } | { ok: false; reason: 'unknown' | 'wrong_provider' };

/**
 * Single-use connect links. The token (256 bits) goes to the app's backend; Redis holds only its
 * SHA-256, so a copy of Redis yields no usable link.
 */
export class ConnectSessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('obConsumeConnect', { numberOfKeys: 1, lua: CONSUME_SCRIPT });
  }

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

  async consume(token: string, provider: string): Promise<ConsumeResult> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return { ok: false, reason: 'unknown' };
    const consume = (
      this.redis as unknown as { obConsumeConnect(key: string, provider: string): Promise<string | null> }
    ).obConsumeConnect;
    const value = await consume.call(this.redis, this.keys.connectSession(hashToken(token)), provider);
    if (value === null) return { ok: false, reason: 'unknown' };
    if (value === 'wrong_provider') return { ok: false, reason: 'wrong_provider' };
    return { ok: true, session: JSON.parse(value) as ConnectSession };
  }
}

/**
 * `state` is single use across every process (RFC 9700 §4.7.1): the first callback to claim it
 * wins, even when two arrive at once with the same session. Only its hash is kept.
 */
export class UsedStateStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async claim(state: string): Promise<boolean> {
    const result = await this.redis.set(
      this.keys.usedState(hashToken(state)),
      '1',
      'EX',
      this.ttlSeconds,
      'NX',
    );
    return result === 'OK';
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
