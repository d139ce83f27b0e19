import { Cluster } from 'ioredis';
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

/**
 * Deletes the lock only if we still own it (compare-and-delete), and tells the processes waiting
 * for it on its channel (ARGV[2], see `waitWhileHeld`): a holder releases right after it stored
 * its refresh, so the message says "read again" without anyone polling for it.
 */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], '')
return 1
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

/** What a waiter sees of a record and its lock in one round trip (PEEK_SCRIPT). */
export interface LockPeek {
  /** Null: the record is gone. */
  version: number | null;
  generation: string;
  locked: boolean;
}

/** How often a waiter looks when the release message may not come (see `waitWhileHeld`). */
const FALLBACK_POLL_MS = 50;
/** ... and when it is not subscribed at all (the subscriber connection is not up). */
const UNSUBSCRIBED_POLL_MS = 10;
/** How long a waiter waits for its subscription before it polls instead. */
const SUBSCRIBE_WAIT_MS = 50;

/** The pub/sub channel a lock's release is published on: the lock's key names it. */
function releasedChannel(lockKey: string): string {
  return `${lockKey}:released`;
}

interface LockScripts {
  obReleaseLock(key: string, token: string, channel: string): Promise<number>;
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
  private readonly releases: ReleaseListener;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    this.releases = new ReleaseListener(redis);
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
    const key = this.keys.lock(provider, connectionId);
    return (await this.scripts.obReleaseLock(key, owner, releasedChannel(key))) === 1;
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

  /**
   * Waits while someone else holds the lock on a record seen at `seen`: answers the first look
   * (see `peek`) at which the record is gone, its version or generation moved, or the lock is
   * free; or the last look, at `deadline` (`now()` time). The holder's release wakes the wait at
   * once (RELEASE_SCRIPT publishes it); a look every FALLBACK_POLL_MS covers what sends no message:
   * a lock that lapsed (a dead holder), or a subscription lost with its connection.
   */
  async waitWhileHeld(
    provider: string,
    connectionId: string,
    seen: { version: number; generation: string },
    deadline: number,
    now: () => number,
  ): Promise<LockPeek> {
    const wake = this.releases.listen(releasedChannel(this.keys.lock(provider, connectionId)));
    try {
      // Subscribed before the first look: a release after the look is then sure to wake us.
      const subscribed = await wake.subscribed;
      for (;;) {
        const peek = await this.peek(provider, connectionId);
        const settled =
          peek.version === null ||
          peek.version !== seen.version ||
          peek.generation !== seen.generation ||
          !peek.locked;
        if (settled || now() >= deadline) return peek;
        await wake.next(subscribed ? FALLBACK_POLL_MS : UNSUBSCRIBED_POLL_MS);
      }
    } finally {
      wake.stop();
    }
  }

  async peek(provider: string, connectionId: string): Promise<LockPeek> {
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

/** One wait's view of a channel: whether it is subscribed, and the next message or timeout. */
interface ReleaseWake {
  /** True once subscribed; false when the subscription did not come in time (poll instead). */
  subscribed: Promise<boolean>;
  /** Resolves at the next message since the last call (at once if one came meanwhile), or after `ms`. */
  next(ms: number): Promise<void>;
  stop(): void;
}

/**
 * The release messages of the locks this process waits for, on one subscriber connection of its
 * own (a subscribed connection serves nothing else), opened at the first wait and closed with
 * the client it was made from. Each channel is subscribed while somebody waits on it.
 */
class ReleaseListener {
  private subscriber: RedisClient | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly subscriptions = new Map<string, Promise<boolean>>();

  constructor(private readonly redis: RedisClient) {}

  listen(channel: string): ReleaseWake {
    let pending = false;
    let wakeUp: (() => void) | undefined;
    const notify = (): void => {
      pending = true;
      wakeUp?.();
    };
    let set = this.waiters.get(channel);
    if (!set) this.waiters.set(channel, (set = new Set()));
    set.add(notify);
    const subscribed = this.subscribe(channel);
    return {
      subscribed,
      next: (ms) =>
        new Promise<void>((resolve) => {
          if (pending) {
            pending = false;
            resolve();
            return;
          }
          const timer = setTimeout(done, ms);
          function done(): void {
            clearTimeout(timer);
            wakeUp = undefined;
            pending = false;
            resolve();
          }
          wakeUp = done;
        }),
      stop: () => {
        wakeUp?.();
        set.delete(notify);
        if (set.size > 0) return;
        this.waiters.delete(channel);
        this.subscriptions.delete(channel);
        this.subscriber?.unsubscribe(channel).catch(() => undefined);
      },
    };
  }

  private subscribe(channel: string): Promise<boolean> {
    const known = this.subscriptions.get(channel);
    if (known) return known;
    const subscriber = this.subscriber ?? this.open();
    let timer: NodeJS.Timeout | undefined;
    const subscribed = Promise.race([
      subscriber.subscribe(channel).then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SUBSCRIBE_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    this.subscriptions.set(channel, subscribed);
    // A subscription that failed is tried again by the next wait on the channel.
    void subscribed.then((ok) => {
      if (!ok && this.subscriptions.get(channel) === subscribed) this.subscriptions.delete(channel);
    });
    return subscribed;
  }

  private open(): RedisClient {
    // Its commands may wait for the connection (subscribe is bounded by SUBSCRIBE_WAIT_MS above);
    // on a reconnect ioredis subscribes again to what it was subscribed to.
    const subscriber =
      this.redis instanceof Cluster
        ? this.redis.duplicate([], { enableOfflineQueue: true })
        : this.redis.duplicate({ enableOfflineQueue: true });
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string) => {
      for (const notify of this.waiters.get(channel) ?? []) notify();
    });
    this.redis.once('end', () => {
      subscriber.disconnect();
      if (this.subscriber === subscriber) this.subscriber = undefined;
    });
    this.subscriber = subscriber;
    return subscriber;
  }
}
