import { randomToken } from '../oauth/random-token';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

/**
 * The per-connection refresh lock: every script that takes, extends, releases or looks at it is
 * written here. Taking it is a fragment rather than a script of its own: the store's reads embed it
 * (ConnectionStore.readClaiming, lockAndRead) so that the lock and the record it guards come in one
 * round trip, which a stampede's first caller waits for before the provider is even asked.
 */

/** A refresh lock to take: its key, the owner token it is taken for, how long it lives. */
export interface LockClaim {
  key: string;
  owner: string;
  ttlMs: number;
}

/** The Lua that takes a refresh lock (SET NX PX: true when taken), for the store's read scripts. */
export function takeLockLua(key: string, owner: string, ttlMs: string): string {
  return `redis.call('SET', ${key}, ${owner}, 'PX', ${ttlMs}, 'NX')`;
}

/** Deletes the lock only if we still own it (compare-and-delete). */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Extends the lock for its owner (ARGV: owner, TTL in ms), fenced: it answers 0 and changes
 * nothing when someone else holds it. A lock that lapsed meanwhile (a Redis outage outlasting its
 * TTL) and that nobody took is taken again, so nobody starts a refresh while ours is unstored.
 */
const RENEW_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** One round trip for a waiter: the record's version and generation, and whether the lock is held. */
const PEEK_SCRIPT = `
local v = redis.call('HMGET', KEYS[1], 'version', 'gen')
return {v[1] or '', v[2] or '', redis.call('EXISTS', KEYS[2])}
`;

interface LockScripts {
  obReleaseLock(key: string, token: string): Promise<number>;
  obRenewLock(key: string, token: string, ttlMs: string): Promise<number>;
  obPeek(connKey: string, lockKey: string): Promise<[string, string, number]>;
}

/**
 * The per-connection refresh lock across processes: `SET key owner NX PX ttl` on a single Redis
 * deployment (no Redlock), released only by its owner. The TTL outlives the provider timeout, so
 * a holder that dies stalls others for at most the TTL. Keys share the connection's hash tag.
 */
export class RefreshLock {
  private readonly scripts: LockScripts;
  private readonly nonce = randomToken(12);
  private issued = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    redis.defineCommand('obReleaseLock', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    redis.defineCommand('obPeek', { numberOfKeys: 2, lua: PEEK_SCRIPT });
    redis.defineCommand('obRenewLock', { numberOfKeys: 1, lua: RENEW_SCRIPT });
    this.scripts = redis as unknown as LockScripts;
  }

  /**
   * The lock a caller would take, with an owner token of its own, for a script that takes it
   * (SET NX PX). Made for every token request, so no random bytes each time: an owner token only
   * has to differ from every other (this process's random nonce and a counter), not be secret.
   */
  claim(provider: string, connectionId: string, ttlMs: number): LockClaim {
    this.issued += 1;
    return { key: this.keys.lock(provider, connectionId), owner: `${this.nonce}.${this.issued}`, ttlMs };
  }

  async release(provider: string, connectionId: string, owner: string): Promise<boolean> {
    return (await this.scripts.obReleaseLock(this.keys.lock(provider, connectionId), owner)) === 1;
  }

  /** Extends the lock for its owner; false when someone else holds it (see RENEW_SCRIPT). */
  async renew(provider: string, connectionId: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = this.keys.lock(provider, connectionId);
    return (await this.scripts.obRenewLock(key, owner, String(Math.ceil(ttlMs)))) === 1;
  }

  /**
   * The lock `claim` as taken, held from now on: renewed every third of its TTL while held, released
   * once by `release()` (whoever ends up holding it last: a refresh, or its late write).
   */
  held(provider: string, connectionId: string, claim: LockClaim): HeldLock {
    return new HeldLock(this, provider, connectionId, claim.owner, claim.ttlMs);
  }

  async peek(
    provider: string,
    connectionId: string,
  ): Promise<{ version: number | null; generation: string; locked: boolean }> {
    const [version, generation, locked] = await this.scripts.obPeek(
      this.keys.connection(provider, connectionId),
      this.keys.lock(provider, connectionId),
    );
    return { version: version === '' ? null : Number(version), generation, locked: locked === 1 };
  }
}

/**
 * A refresh lock this process holds. A refresh whose answer could not be stored hands it to the
 * late write (`handOff`), which keeps it until the tokens are stored or it gives up: nobody else
 * may present a refresh token the provider may have retired already.
 */
export class HeldLock {
  private readonly timer: NodeJS.Timeout;
  private handedOff = false;
  private released = false;

  constructor(
    private readonly lock: RefreshLock,
    readonly provider: string,
    readonly connectionId: string,
    readonly owner: string,
    readonly ttlMs: number,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(100, ttlMs / 3));
    this.timer.unref();
  }

  /** Extends the lock now; false when it could not (someone else holds it, or Redis is away). */
  async renew(): Promise<boolean> {
    if (this.released) return false;
    return this.lock.renew(this.provider, this.connectionId, this.owner, this.ttlMs).catch(() => false);
  }

  /** From now on `releaseUnlessHandedOff` leaves the lock alone: someone else releases it. */
  handOff(): void {
    this.handedOff = true;
  }

  /** The holder's `finally`: releases, unless the lock was handed to a late write. */
  async releaseUnlessHandedOff(): Promise<void> {
    if (!this.handedOff) await this.release();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.lock.release(this.provider, this.connectionId, this.owner).catch(() => undefined);
  }
}
