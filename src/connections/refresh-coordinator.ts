import { BrokerError, ErrorCode } from '../errors/broker-error';
import { BrokerMetrics } from '../observability/metrics';
import { Logger, errorForLog } from '../observability/logger';
import { TokenEndpointDeps, requestToken, toTokenEndpointError } from '../oauth/request-token';
import { TokenEndpointError } from '../oauth/token-endpoint-error';
import { Provider } from '../providers/provider-definition';
import { ConnectionEvents } from './connection-events';
import { ownerOf } from './connection-owner';
import { ConnectionSecrets, LastError, StoredConnection } from './connection-record';
import { openSecrets, sealSecrets } from './connection-secrets';
import { ConnectionStore } from './connection-store';
import { KeyRing } from './key-ring';
import { freshFor } from './needs-refresh';
import { HeldLock, LockClaim, RefreshLock } from './refresh-lock';
import { REFRESH_AHEAD_WINDOW_MS, ScheduleSettings, computeNextRefreshAt } from './schedule';

export type RefreshTrigger = 'caller' | 'refresh_ahead' | 'keepalive' | 'retry';

export interface RefreshCoordinatorDeps {
  store: ConnectionStore;
  lock: RefreshLock;
  keyRing: KeyRing;
  tokenEndpoint: TokenEndpointDeps;
  settings: { providerTimeoutSeconds: number };
  logger: Logger;
  metrics: BrokerMetrics;
  events: ConnectionEvents;
  now: () => number;
  schedule: (provider: Provider) => ScheduleSettings;
  /**
   * Revokes tokens the provider issued for a connection that no longer holds them (deleted, or
   * deleted and made again, while the refresh was under way); best effort, in the background.
   */
  revoke: (provider: Provider, connectionId: string, secrets: ConnectionSecrets) => void;
}

interface RefreshNeed {
  minValiditySeconds: number;
  forceRefresh: boolean;
  trigger: RefreshTrigger;
}

const MAX_ROUNDS = 4;

/**
 * One refresh per connection at a time, everywhere: callers in one process share one promise
 * (single flight); processes share a Redis lock. Whoever takes the lock re-reads the record and
 * refreshes only if nobody did meanwhile; the others wait for the record to change, then read.
 * New tokens (with the rotated refresh token) are written before the lock is released and before
 * any caller is answered.
 */
export class RefreshCoordinator {
  /** The refreshes under way in this process, one per connection (see `once`). */
  private readonly inFlight = new Map<string, Promise<StoredConnection>>();
  /** Refreshes the provider answered but Redis has not taken yet (see persistLater). */
  private readonly pendingWrites = new Set<Promise<void>>();
  readonly lockTtlMs: number;

  constructor(private readonly deps: RefreshCoordinatorDeps) {
    // Outlives a provider call with its one retry, so a live holder never loses the lock.
    const timeoutMs = deps.settings.providerTimeoutSeconds * 1000;
    this.lockTtlMs = timeoutMs * ((deps.tokenEndpoint.retries ?? 1) + 1) + 5_000;
  }

  /** A caller's refresh, its read having found the lock taken already (or not tried it). */
  refresh(provider: Provider, seen: StoredConnection, need: RefreshNeed): Promise<StoredConnection> {
    return this.once(provider.id, seen.connection_id, null, () =>
      this.refreshAcrossProcesses(provider, seen, need),
    );
  }

  /** The lock a caller's read may take for the refresh it would then run (see `refreshClaimed`). */
  claim(providerId: string, connectionId: string): LockClaim {
    return this.deps.lock.claim(providerId, connectionId, this.lockTtlMs);
  }

  /**
   * A caller's refresh whose read took the lock `claim` already, with the record read under it:
   * nothing can have changed since, so it goes straight to the provider.
   */
  refreshClaimed(
    provider: Provider,
    current: StoredConnection,
    claim: LockClaim,
    need: RefreshNeed,
  ): Promise<StoredConnection> {
    const held = this.deps.lock.held(provider.id, current.connection_id, claim);
    return this.once(provider.id, current.connection_id, held, () =>
      this.refreshLocked(provider, current, need.trigger, held),
    );
  }

  /**
   * Takes the connection's refresh lock without waiting and reads the record under it, in one
   * round trip. Null when someone else holds the lock; `record` null when the connection is gone.
   * The holder releases `held` when done.
   */
  async takeLock(
    providerId: string,
    connectionId: string,
    ttlMs = this.lockTtlMs,
  ): Promise<{ held: HeldLock; record: StoredConnection | null } | null> {
    const claim = this.deps.lock.claim(providerId, connectionId, ttlMs);
    const taken = await this.deps.store.lockAndRead(providerId, connectionId, claim);
    if (!taken) return null;
    return { held: this.deps.lock.held(providerId, connectionId, claim), record: taken.record };
  }

  /**
   * Runs a refresh of one connection once, in this process and across processes: callers that
   * come while it runs here share its promise; `held`, the refresh lock it runs under (null: it
   * takes the lock itself), is released when it ends, unless it was handed to a late write. A
   * refresh holding a lock of its own that finds one running here gives its lock back and joins.
   */
  private once(
    providerId: string,
    connectionId: string,
    held: HeldLock | null,
    refresh: () => Promise<StoredConnection>,
  ): Promise<StoredConnection> {
    const key = `${providerId}:${connectionId}`;
    const running = this.inFlight.get(key);
    if (running) return held ? held.release().then(() => running) : running;
    const flight = (held ? holding(held, refresh) : refresh()).finally(() => {
      if (this.inFlight.get(key) === flight) this.inFlight.delete(key);
    });
    this.inFlight.set(key, flight);
    return flight;
  }

  /**
   * Waits for the refreshes under way, sent to the provider already, and for late writes of
   * answers Redis did not take at once: each is bounded by the lock's TTL, and so is this.
   */
  async drain(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight.values(), ...this.pendingWrites]),
      new Promise((r) => (timer = setTimeout(r, this.lockTtlMs + 1000))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Background work: takes the lock without waiting (a busy connection is being refreshed
   * already), re-checks that the connection is still due, refreshes.
   */
  async refreshIfDue(
    provider: Provider,
    connectionId: string,
  ): Promise<'refreshed' | 'skipped' | 'failed' | 'gone'> {
    const taken = await this.takeLock(provider.id, connectionId);
    if (!taken) return 'skipped';
    const { held, record } = taken;
    try {
      if (!record) {
        await this.deps.store.forgetIfGone(provider.id, connectionId);
        return 'gone';
      }
      const now = this.deps.now();
      if (record.next_refresh_at === null || record.next_refresh_at > now) {
        await this.deps.store.syncSchedule(provider.id, connectionId, record.next_refresh_at);
        return 'skipped';
      }
      if (record.status !== 'active' || !record.refreshable || record.auth_mode !== 'oauth2') {
        await this.deps.store.patch(
          provider.id,
          connectionId,
          { next_refresh_at: null },
          record.updated_at,
          record,
        );
        return 'skipped';
      }
      const trigger: RefreshTrigger =
        record.refresh_failures > 0
          ? 'retry'
          : record.read_since_refresh &&
              record.expires_at !== null &&
              record.expires_at - this.deps.schedule(provider).refreshMarginMs - REFRESH_AHEAD_WINDOW_MS <=
                now
            ? 'refresh_ahead'
            : 'keepalive';
      try {
        await this.once(provider.id, connectionId, held, () =>
          this.refreshLocked(provider, record, trigger, held),
        );
        return 'refreshed';
      } catch {
        return 'failed';
      }
    } finally {
      await held.releaseUnlessHandedOff();
    }
  }

  private async refreshAcrossProcesses(
    provider: Provider,
    seen: StoredConnection,
    need: RefreshNeed,
  ): Promise<StoredConnection> {
    const started = this.deps.now();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const taken = await this.takeLock(provider.id, seen.connection_id);
      if (taken) {
        const { held, record: current } = taken;
        return holding(held, async () => {
          if (!current) throw new BrokerError('connection_not_found', 'The connection was deleted.');
          return (
            this.settledMeanwhile(seen, current, need) ??
            (await this.refreshLocked(provider, current, need.trigger, held))
          );
        });
      }
      const changed = await this.waitForHolder(provider.id, seen);
      if (changed) {
        const settled = this.settledMeanwhile(seen, changed, need);
        if (settled) {
          this.deps.metrics.lockWaits.inc({ outcome: 'served' });
          this.deps.metrics.lockWaitDuration.observe((this.deps.now() - started) / 1000);
          return settled;
        }
      }
      // The holder vanished without a result (died, or did other work such as a re-seal): try again.
      this.deps.metrics.lockWaits.inc({ outcome: 'retried' });
    }
    throw new BrokerError('provider_unavailable', 'The refresh could not be completed; try again.', {
      retryable: true,
    });
  }

  /**
   * What a caller can take from a record that changed while it waited: a newer token (refresh,
   * reconnect, import), or the failure the refresh ran into. Undefined: nothing settled.
   */
  private settledMeanwhile(
    seen: StoredConnection,
    current: StoredConnection,
    need: RefreshNeed,
  ): StoredConnection | undefined {
    if (current.status === 'reauthorization_required') throw reauthorizationRequired(current);
    if (current.last_activity_at !== seen.last_activity_at || current.created_at !== seen.created_at)
      return current;
    // A token of unknown expiry is not taken as settled here: the caller came to refresh it.
    if (
      !need.forceRefresh &&
      current.expires_at !== null &&
      freshFor(current, need.minValiditySeconds * 1000, this.deps.now())
    )
      return current;
    const error = current.last_error;
    if (error && current.version !== seen.version && error.at !== seen.last_error?.at)
      throw errorFromLastError(error);
    return undefined;
  }

  /**
   * Waits for the lock's holder elsewhere (see RefreshLock.waitWhileHeld) and answers the record
   * once its version moved; null when the lock came free without a change, or after the lock's TTL.
   */
  private async waitForHolder(providerId: string, seen: StoredConnection): Promise<StoredConnection | null> {
    const deadline = this.deps.now() + this.lockTtlMs + 1000;
    const peek = await this.deps.lock.waitWhileHeld(
      providerId,
      seen.connection_id,
      seen,
      deadline,
      this.deps.now,
    );
    if (peek.version === null) throw new BrokerError('connection_not_found', 'The connection was deleted.');
    if (peek.version !== seen.version || peek.generation !== seen.generation)
      return this.deps.store.read(providerId, seen.connection_id);
    return null;
  }

  /** The refresh-token grant itself (RFC 6749 §6), under the lock `held`. */
  private async refreshLocked(
    provider: Provider,
    current: StoredConnection,
    trigger: RefreshTrigger,
    held: HeldLock,
  ): Promise<StoredConnection> {
    const began = this.deps.now();
    const log = this.deps.logger.child({
      provider: provider.id,
      connection_id: current.connection_id,
      trigger,
    });
    // A record that cannot be refreshed at all fails like any refresh: recorded, with backoff,
    // so the sweeper moves on to other work instead of taking it again at every look. A caller
    // asking for the token of a record that does not decrypt is answered decryption_failed and
    // the record is left untouched (a key removed from the ring too early can be put back).
    let secrets: ConnectionSecrets;
    try {
      secrets = openSecrets(this.deps.keyRing, provider.id, current.connection_id, current);
    } catch (error) {
      const failure =
        error instanceof BrokerError ? error : new BrokerError('decryption_failed', 'unreadable');
      if (trigger !== 'caller')
        await this.recordUnrefreshable(provider, current, failure, undefined, trigger, log);
      throw failure;
    }
    if (!secrets.refresh_token) {
      const failure = new BrokerError('reauthorization_required', 'There is no refresh token.');
      await this.recordUnrefreshable(provider, current, failure, 'no_refresh_token', trigger, log);
      throw failure;
    }
    let answered:
      | {
          rotated: boolean;
          write?: () => Promise<number | null>;
          secrets?: ConnectionSecrets;
          sealed?: string;
        }
      | undefined;
    // The lock must outlive a failover before the refresh token is presented: a lock taken on a
    // master being demoted is not on the replica that takes over, and another process could then
    // present the same refresh token there (docs/redis-topologies.md). Where the store waits for
    // replicas, it confirms the lock (and the read) the same way; elsewhere this costs nothing.
    await this.deps.store.replicated();
    try {
      const tokens = await requestToken(this.deps.tokenEndpoint, provider, {
        grant_type: 'refresh_token',
        refresh_token: secrets.refresh_token,
      });
      answered = { rotated: Boolean(tokens.refresh_token) };
      const now = this.deps.now();
      // A provider that rotates sends a new refresh token; one that does not keeps the old alive.
      const fresh: ConnectionSecrets = {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token ?? secrets.refresh_token,
        token_type: tokens.token_type,
      };
      answered.secrets = fresh;
      const sealed = sealSecrets(this.deps.keyRing, provider.id, current.connection_id, fresh);
      answered.sealed = sealed.data;
      const settled = {
        status: 'active' as const,
        expires_at: tokens.expires_at,
        scopes: tokens.granted_scopes ?? current.scopes,
        last_refreshed_at: now,
        last_activity_at: now,
        last_error: null,
        refresh_failures: 0,
        read_since_refresh: false,
        refreshable: true,
      };
      const fields = {
        ...settled,
        key_id: sealed.keyId,
        sealed: sealed.data,
        next_refresh_at: computeNextRefreshAt({ ...current, ...settled }, this.deps.schedule(provider), now),
      };
      const written: StoredConnection = { ...current, ...fields, updated_at: now };
      const write = (): Promise<number | null> =>
        this.deps.store.patch(provider.id, current.connection_id, fields, now, current);
      answered.write = write;
      const version = await write();
      const elapsed = (this.deps.now() - began) / 1000;
      this.deps.metrics.refreshes.inc({ provider: provider.id, outcome: 'success', trigger });
      this.deps.metrics.refreshDuration.observe({ provider: provider.id }, elapsed);
      log.info(
        {
          outcome: 'success',
          duration_ms: Math.round(elapsed * 1000),
          rotated: Boolean(tokens.refresh_token),
        },
        'refresh',
      );
      if (version !== null) return { ...written, version };
      // Replaced or deleted while we refreshed (a reconnect wins): answer what is there now.
      const stored = await this.orphaned(provider, current, fresh);
      if (!stored) throw new BrokerError('connection_not_found', 'The connection was deleted.');
      return stored;
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      if (answered) {
        // The window no lock can close: the provider answered (and, if it rotates, retired the
        // refresh token we hold) but the new tokens could not be stored, so this is the store's
        // failure (503), not the provider's. The write is retried here while the lock would be ours
        // (persistLater); should this process die first, the next refresh learns it from
        // invalid_grant. Say so now, without any token, so an operator can tell.
        log.error(
          { err: errorForLog(error), rotated: answered.rotated },
          'refresh answered by the provider but not stored',
        );
        const { write, secrets: fresh, sealed } = answered;
        if (write && fresh && sealed) {
          held.handOff();
          this.persistLater(
            write,
            held,
            () => this.ownWriteConfirmed(provider.id, current.connection_id, sealed),
            () => this.orphaned(provider, current, fresh),
            log,
          );
        }
        throw error;
      }
      const failure = toTokenEndpointError(error);
      await this.recordFailure(provider, current, failure, trigger, log);
      throw brokerErrorFor(failure);
    }
  }

  /**
   * After a write that found the record changed: what the connection holds now, and when it was
   * deleted meanwhile (gone, or made again under the same id: another generation), the tokens the
   * provider just issued are revoked, since no record will ever hold them (a deleted connection
   * keeps no live grant the broker obtained).
   */
  private async orphaned(
    provider: Provider,
    current: StoredConnection,
    fresh: ConnectionSecrets,
  ): Promise<StoredConnection | null> {
    const stored = await this.deps.store.read(provider.id, current.connection_id);
    if (!stored || stored.generation !== current.generation)
      this.deps.revoke(provider, current.connection_id, fresh);
    return stored;
  }

  /**
   * Whether a write that failed after Redis ran it (its replica confirmation did not come: a
   * failover under way) is what the record holds now, and is now on a replica. Throws while it
   * cannot be confirmed yet; answers false when the record holds something else.
   */
  private async ownWriteConfirmed(
    providerId: string,
    connectionId: string,
    sealed: string,
  ): Promise<boolean> {
    const stored = await this.deps.store.read(providerId, connectionId);
    if (!stored || stored.sealed !== sealed) return false;
    await this.deps.store.replicated();
    return true;
  }

  /**
   * The provider answered but Redis did not take the write. The new tokens now live only in this
   * process, and with rotation the stored refresh token is already dead: keep trying the same
   * compare-and-set, holding the refresh lock (renewed before each try, fenced by its owner) so
   * nobody presents the retired refresh token meanwhile, for a lock's TTL; then release it. The
   * caller was answered 503 already; a waiter elsewhere sees the version move.
   */
  private persistLater(
    write: () => Promise<number | null>,
    held: HeldLock,
    ownWriteConfirmed: () => Promise<boolean>,
    onConflict: () => Promise<unknown>,
    log: Logger,
  ): void {
    const deadline = this.deps.now() + this.lockTtlMs;
    const attempt = async (): Promise<void> => {
      while (this.deps.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        await held.renew();
        let version: number | null;
        try {
          version = await write();
        } catch {
          continue; // still away
        }
        if (version !== null) {
          log.warn('refresh stored late, after Redis came back');
          return;
        }
        // The compare-and-set found another version: maybe our own first write, which Redis ran
        // but no replica confirmed. Once a replica has it, it is stored; while none has, a
        // failover may still drop it, and the same compare-and-set is tried again (it succeeds
        // on a new master that never had it).
        let ours: boolean;
        try {
          ours = await ownWriteConfirmed();
        } catch {
          continue;
        }
        if (ours) {
          log.warn('refresh stored late: the first write is now on a replica');
          return;
        }
        log.warn('refresh not stored late: the connection changed meanwhile');
        await onConflict().catch((error: unknown) =>
          log.warn({ err: errorForLog(error) }, 'could not check the connection after a late write'),
        );
        return;
      }
      log.error(
        'refresh lost: Redis did not come back in time; the next refresh will find out from the provider',
      );
    };
    const task = attempt()
      .finally(() => held.release())
      .finally(() => this.pendingWrites.delete(task));
    this.pendingWrites.add(task);
  }

  /**
   * A refresh that could not be tried (the tokens do not open, or there is no refresh token),
   * recorded as a failure: backoff for a ring that may get its key back, the user for a record
   * without a refresh token.
   */
  private async recordUnrefreshable(
    provider: Provider,
    current: StoredConnection,
    failure: BrokerError,
    reauth: string | undefined,
    trigger: RefreshTrigger,
    log: Logger,
  ): Promise<void> {
    this.deps.metrics.refreshes.inc({ provider: provider.id, outcome: failure.code, trigger });
    log.warn({ outcome: failure.code, refresh_failures: current.refresh_failures + 1 }, 'refresh failed');
    await this.storeFailure(
      provider,
      current,
      { code: failure.code, message: failure.detail, at: this.deps.now() },
      reauth,
      log,
    );
  }

  private async recordFailure(
    provider: Provider,
    current: StoredConnection,
    failure: TokenEndpointError,
    trigger: RefreshTrigger,
    log: Logger,
  ): Promise<void> {
    const now = this.deps.now();
    const code = brokerErrorFor(failure).code;
    const lastError: LastError & { retryable?: boolean } = { code, message: failure.message, at: now };
    if (code === 'provider_unavailable') lastError.retryable = failure.retryable;
    this.deps.metrics.refreshes.inc({ provider: provider.id, outcome: failure.kind, trigger });
    log.warn(
      {
        outcome: failure.kind,
        oauth_error: failure.oauthError,
        http_status: failure.httpStatus,
        refresh_failures: current.refresh_failures + 1,
      },
      'refresh failed',
    );
    const reauth = failure.kind === 'invalid_grant' ? 'invalid_grant' : undefined;
    await this.storeFailure(provider, current, lastError, reauth, log);
  }

  /**
   * Records a failed refresh on the record it was begun on (its version, in its generation: never
   * on a connection deleted and made again meanwhile), with the next try's time. `reauth`: why the
   * user must connect again, when they must.
   */
  private async storeFailure(
    provider: Provider,
    current: StoredConnection,
    lastError: LastError & { retryable?: boolean },
    reauth: string | undefined,
    log: Logger,
  ): Promise<void> {
    const now = lastError.at;
    const next = {
      ...current,
      status: reauth ? ('reauthorization_required' as const) : current.status,
      refresh_failures: current.refresh_failures + 1,
    };
    let version: number | null = null;
    try {
      version = await this.deps.store.patch(
        provider.id,
        current.connection_id,
        {
          status: next.status,
          refresh_failures: next.refresh_failures,
          last_error: lastError,
          next_refresh_at: computeNextRefreshAt(next, this.deps.schedule(provider), now),
        },
        now,
        current,
      );
    } catch (error) {
      log.warn({ err: errorForLog(error) }, 'could not record the refresh failure');
    }
    if (reauth && version !== null) {
      this.deps.events.emit({
        type: 'connection.reauthorization_required',
        provider: provider.id,
        connection_id: current.connection_id,
        ...ownerOf(current),
        reason: reauth,
      });
    }
  }
}

/** The 409 of a connection whose status says the user must connect again, with the stored reason. */
export function reauthorizationRequired(record: StoredConnection): BrokerError {
  const why = record.last_error?.message ? ` (${record.last_error.message})` : '';
  return new BrokerError('reauthorization_required', `The connection needs the user to connect again${why}.`);
}

/** Upstream failures map to a few kinds, never to per-provider codes. */
export function brokerErrorFor(failure: TokenEndpointError): BrokerError {
  switch (failure.kind) {
    case 'invalid_grant':
      return new BrokerError(
        'reauthorization_required',
        'The provider refused the refresh token (invalid_grant); the user must connect again.',
      );
    case 'client_rejected':
      return new BrokerError(
        'provider_rejected_client',
        `The provider refused the broker's client credentials (${failure.oauthError ?? 'invalid_client'}); check the configuration.`,
        { retryable: false },
      );
    case 'refused':
      return new BrokerError(
        'provider_unavailable',
        `The provider refused the refresh: ${failure.message}.`,
        { retryable: false },
      );
    default:
      return new BrokerError(
        'provider_unavailable',
        `The provider could not refresh the token: ${failure.message}.`,
        { retryable: true },
      );
  }
}

function errorFromLastError(error: LastError & { retryable?: boolean }): BrokerError {
  const known: ErrorCode[] = ['reauthorization_required', 'provider_unavailable', 'provider_rejected_client'];
  const code = known.includes(error.code as ErrorCode) ? (error.code as ErrorCode) : 'provider_unavailable';
  const retryable =
    code === 'reauthorization_required' ? undefined : (error.retryable ?? code === 'provider_unavailable');
  return new BrokerError(code, `The refresh failed: ${error.message}.`, { retryable });
}

/** Runs `work` under the lock `held`, then releases it, unless it was handed to a late write. */
async function holding<T>(held: HeldLock, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    await held.releaseUnlessHandedOff();
  }
}
