import { randomToken } from '../oauth/random-token';
import { StoredConnection } from './connection-record';
import type { ConnectionStore, LockClaim } from './connection-store';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

/** Deletes the lock only if we still own it (compare-and-delete). */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** One round trip for a waiter: the record's version and whether the lock is still held. */
const PEEK_SCRIPT = `
return {redis.call('HGET', KEYS[1], 'version') or '', redis.call('EXISTS', KEYS[2])}
`;

interface LockScripts {
  obReleaseLock(key: string, token: string): Promise<number>;
  obPeek(connKey: string, lockKey: string): Promise<[string, number]>;
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
    this.scripts = redis as unknown as LockScripts;
  }

  /**
   * Takes the lock and, when taken, reads the connection in the same round trip (the store owns
   * the record's format). Answers the owner token and the record (null: gone), or null when
   * someone else holds the lock.
   */
  async acquireAndRead(
    store: ConnectionStore,
    provider: string,
    connectionId: string,
    ttlMs: number,
  ): Promise<{ owner: string; record: StoredConnection | null } | null> {
    const claim = this.claim(provider, connectionId, ttlMs);
    const taken = await store.lockAndRead(provider, connectionId, claim);
    return taken ? { owner: claim.owner, record: taken.record } : null;
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

  async peek(provider: string, connectionId: string): Promise<{ version: number | null; locked: boolean }> {
    const [version, locked] = await this.scripts.obPeek(
      this.keys.connection(provider, connectionId),
      this.keys.lock(provider, connectionId),
    );
    return { version: version === '' ? null : Number(version), locked: locked === 1 };
  }
}
