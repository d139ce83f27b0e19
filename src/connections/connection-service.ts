import { BrokerError } from '../errors/broker-error';
import { Logger, errorForLog } from '../observability/logger';
import { TokenSet } from '../oauth/parse-token-response';
import { DEFAULT_API_KEY_SETTINGS, Provider } from '../providers/provider-definition';
import { ConnectionEvents } from './connection-events';
import { ConnectionSecrets, StoredConnection } from './connection-record';
import { openSecrets, sealSecrets } from './connection-secrets';
import { ConnectionFields, ConnectionPatch, ConnectionStore, WriteExpectation } from './connection-store';
import { ConnectionOwner, NO_OWNER, OwnerChange, applyOwnerChange, ownerOf } from './connection-owner';
import { OwnerFilter } from './owner-index';
import { KeyRing } from './key-ring';
import { RefreshCoordinator, reauthorizationRequired } from './refresh-coordinator';
import { freshFor, needsRefresh } from './needs-refresh';
import { BackgroundRevocations } from './background-revocations';
import {
  ScheduleConfig,
  ScheduleSettings,
  computeNextRefreshAt,
  refreshAheadAt,
  scheduleSettingsFor,
} from './schedule';

export interface ConnectionServiceDeps {
  store: ConnectionStore;
  keyRing: KeyRing;
  /** One refresh per connection at a time (built with this service's `now` and revocations). */
  coordinator: RefreshCoordinator;
  revocations: BackgroundRevocations;
  settings: ScheduleConfig;
  logger: Logger;
  events: ConnectionEvents;
  now?: () => number;
}

export type TokenAnswer =
  | {
      auth_mode: 'oauth2';
      access_token: string;
      token_type: string;
      expires_at: string | null;
      scopes: string[];
    }
  | {
      auth_mode: 'api_key';
      api_key: string;
      headers: Record<string, string>;
      expires_at: null;
      scopes: string[];
    };

export interface TokenRequestOptions {
  minValiditySeconds: number;
  forceRefresh: boolean;
}

/**
 * What the broker does with connections: store what a connect or import brings, answer fresh
 * tokens, refresh, delete and re-seal. Providers are passed in, already checked by the caller.
 */
export class ConnectionService {
  private readonly now: () => number;
  private readonly coordinator: RefreshCoordinator;
  /**
   * The answer of each refresh's record, made once for every caller that shared the refresh (one
   * decryption, not one per caller; in a stampede hundreds wait for the same record). Keyed by
   * the record object the refresh resolved with, so it lives as long as a caller still holds it.
   */
  private readonly refreshedAnswers = new WeakMap<StoredConnection, TokenAnswer>();

  constructor(private readonly deps: ConnectionServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.coordinator = deps.coordinator;
  }

  scheduleSettings(provider: Pick<Provider, 'keepalive_seconds'>): ScheduleSettings {
    return scheduleSettingsFor(this.deps.settings, provider);
  }

  /** Stores the tokens of a connect or an import: a fresh start that keeps only `created_at`. */
  async saveTokens(
    provider: Provider,
    connectionId: string,
    tokens: TokenSet,
    requestedScopes: string[],
    owner?: OwnerChange,
  ): Promise<{ created: boolean; connection: StoredConnection }> {
    const { created } = await this.storeTokens(provider, connectionId, tokens, requestedScopes, owner);
    return { created, connection: await this.read(provider.id, connectionId) };
  }

  async saveApiKey(
    provider: Provider,
    connectionId: string,
    apiKey: string,
    owner?: OwnerChange,
  ): Promise<{ created: boolean; connection: StoredConnection }> {
    const { created } = await this.storeApiKey(provider, connectionId, apiKey, owner);
    return { created, connection: await this.read(provider.id, connectionId) };
  }

  /** Like `saveTokens`, without reading the record back (a browser connect shows none of it). */
  async storeTokens(
    provider: Provider,
    connectionId: string,
    tokens: TokenSet,
    requestedScopes: string[],
    owner?: OwnerChange,
  ): Promise<{ created: boolean }> {
    return this.saveFresh(
      provider,
      connectionId,
      {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: tokens.token_type,
      },
      { scopes: tokens.granted_scopes ?? requestedScopes, expires_at: tokens.expires_at },
      owner,
    );
  }

  /** Like `saveApiKey`, without reading the record back. */
  async storeApiKey(
    provider: Provider,
    connectionId: string,
    apiKey: string,
    owner?: OwnerChange,
  ): Promise<{ created: boolean }> {
    return this.saveFresh(
      provider,
      connectionId,
      { api_key: apiKey },
      { scopes: [], expires_at: null },
      owner,
    );
  }

  private async saveFresh(
    provider: Provider,
    connectionId: string,
    secrets: ConnectionSecrets,
    extra: { scopes: string[]; expires_at: number | null },
    ownerChange: OwnerChange | undefined,
  ): Promise<{ created: boolean }> {
    const now = this.now();
    const sealed = sealSecrets(this.deps.keyRing, provider.id, connectionId, secrets);
    const fields: Omit<ConnectionFields, 'end_user' | 'tags'> = {
      provider: provider.id,
      connection_id: connectionId,
      auth_mode: provider.auth_mode,
      status: 'active',
      scopes: extra.scopes,
      expires_at: extra.expires_at,
      last_refreshed_at: null,
      last_activity_at: now,
      last_error: null,
      refresh_failures: 0,
      next_refresh_at: null,
      read_since_refresh: false,
      refreshable: Boolean(secrets.refresh_token),
      key_id: sealed.keyId,
      sealed: sealed.data,
    };
    fields.next_refresh_at = computeNextRefreshAt(fields, this.scheduleSettings(provider), now);
    // Naming no owner field, the write keeps the record's owner itself: no read first.
    const { created, owner } =
      ownerChange?.end_user === undefined && ownerChange?.tags === undefined
        ? await this.deps.store.reconnect(fields, now)
        : await this.replaceKeepingOwner({ ...fields, ...NO_OWNER }, now, ownerChange);
    if (created)
      this.deps.events.emit({
        type: 'connection.created',
        provider: provider.id,
        connection_id: connectionId,
        ...owner,
      });
    return { created };
  }

  /**
   * A reconnect or re-import starts the record afresh but keeps its owner fields unless `change`
   * names them: the owner is read, and the record replaced only if still at the version read
   * (compare-and-set), so a PATCH meanwhile is never undone.
   */
  private async replaceKeepingOwner(
    fields: ConnectionFields,
    now: number,
    change: OwnerChange | undefined,
  ): Promise<{ created: boolean; owner: ConnectionOwner }> {
    const namesAll = change?.end_user !== undefined && change.tags !== undefined;
    for (let attempt = 1; ; attempt++) {
      const before = namesAll
        ? null
        : await this.deps.store.owners.current(fields.provider, fields.connection_id);
      const owner = applyOwnerChange(before?.owner ?? NO_OWNER, change);
      // After a few lost races (a refresh landing each time), the last owner read is good enough.
      const expect: WriteExpectation =
        namesAll || attempt >= 5
          ? '*'
          : before
            ? { version: before.version, generation: before.generation }
            : 'absent';
      const result = await this.deps.store.replace({ ...fields, ...owner }, now, expect);
      if (result.version >= 0) return { created: result.created, owner };
    }
  }

  /** `PATCH`: replaces the owner fields `change` names; answers the metadata. */
  async updateOwner(
    providerId: string,
    connectionId: string,
    change: OwnerChange,
  ): Promise<StoredConnection> {
    const patch: ConnectionPatch = {};
    if (change.end_user !== undefined) patch.end_user = change.end_user;
    if (change.tags !== undefined) patch.tags = change.tags;
    const version = await this.deps.store.patch(providerId, connectionId, patch, this.now(), '*');
    if (version === null) throw connectionNotFound(providerId, connectionId);
    return this.read(providerId, connectionId);
  }

  async read(providerId: string, connectionId: string): Promise<StoredConnection> {
    const record = await this.deps.store.read(providerId, connectionId);
    if (!record) throw connectionNotFound(providerId, connectionId);
    return record;
  }

  /**
   * A token valid for at least `minValiditySeconds`, refreshed first when it is not (or when
   * forced). A token of unknown expiry is served until forced or refused.
   */
  async getToken(
    provider: Provider,
    connectionId: string,
    options: TokenRequestOptions,
  ): Promise<TokenAnswer> {
    // One read serves the common case and a refresh alike. When the token is to be refreshed, the
    // read also takes the refresh lock if it is free (the script checks what the code below does),
    // so a stampede's first caller asks the provider after one round trip; the others join the
    // refresh in flight, with no more round trips nor a decryption of tokens they will not hand out.
    const minMs = options.minValiditySeconds * 1000;
    const claim = this.coordinator.claim(provider.id, connectionId);
    const read = await this.deps.store.readClaiming(
      provider.id,
      connectionId,
      claim,
      this.now() + minMs,
      options.forceRefresh,
    );
    const record = read.record;
    if (!record) throw connectionNotFound(provider.id, connectionId);
    const need = { ...options, trigger: 'caller' as const };
    if (read.claimed)
      return this.answerRefreshed(provider, record, () =>
        this.coordinator.refreshClaimed(provider, record, claim, need),
      );

    if (record.status === 'reauthorization_required') throw reauthorizationRequired(record);
    const open = (r: StoredConnection) => openSecrets(this.deps.keyRing, provider.id, connectionId, r);
    if (record.auth_mode === 'api_key') return apiKeyAnswer(provider, open(record));

    const now = this.now();
    if (needsRefresh(record, { minValidityMs: minMs, forceRefresh: options.forceRefresh }, now))
      return this.answerRefreshed(provider, record, () => this.coordinator.refresh(provider, record, need));
    if (!options.forceRefresh && freshFor(record, minMs, now)) {
      const secrets = open(record);
      this.noteRead(provider, record);
      return oauthAnswer(record, secrets);
    }
    // Nothing to refresh with: serve the token while it lives, then the user must come back.
    if (record.expires_at !== null && record.expires_at <= now) {
      await this.markExpiredWithoutRefreshToken(record);
      throw new BrokerError(
        'reauthorization_required',
        'The access token expired and there is no refresh token.',
      );
    }
    return oauthAnswer(record, open(record));
  }

  /** The token of a refresh made for a caller; a failed one says until when the current token lives. */
  private async answerRefreshed(
    provider: Provider,
    record: StoredConnection,
    refresh: () => Promise<StoredConnection>,
  ): Promise<TokenAnswer> {
    let refreshed: StoredConnection;
    try {
      refreshed = await refresh();
    } catch (error) {
      if (
        error instanceof BrokerError &&
        error.code === 'provider_unavailable' &&
        record.expires_at !== null &&
        record.expires_at > this.now()
      ) {
        // The refresh failed, but the current token still works for a while: say until when, so a
        // caller that can live with it asks again with min_validity=0.
        throw new BrokerError(error.code, error.detail, {
          retryable: error.retryable,
          cause: error,
          extra: { current_token_expires_at: new Date(record.expires_at).toISOString() },
        });
      }
      throw error;
    }
    let answer = this.refreshedAnswers.get(refreshed);
    if (!answer) {
      answer = oauthAnswer(
        refreshed,
        openSecrets(this.deps.keyRing, provider.id, refreshed.connection_id, refreshed),
      );
      this.refreshedAnswers.set(refreshed, answer);
    }
    return answer;
  }

  /** A background refresh (refresh-ahead, keep-alive, retry): never waits for a busy connection. */
  async refreshInBackground(provider: Provider, connectionId: string) {
    return this.coordinator.refreshIfDue(provider, connectionId);
  }

  /** Puts a connection that cannot be worked on now (its provider is disabled) back by `delayMs`. */
  async postpone(providerId: string, connectionId: string, delayMs: number): Promise<void> {
    await this.deps.store.syncSchedule(providerId, connectionId, this.now() + delayMs);
  }

  /**
   * The SCAN repair of index and schedule (ConnectionStore.repair), run by one process per
   * `intervalMs` across all of them; null when another process has it this period.
   */
  async repairIfDue(
    intervalMs: number,
    stopping?: () => boolean,
  ): Promise<{ records: number; indexAdded: number; scheduleAdded: number } | null> {
    if (!(await this.deps.store.claimRepair(intervalMs, String(process.pid)))) return null;
    return this.deps.store.repair(stopping);
  }

  countDue(): Promise<number> {
    return this.deps.store.countDue(this.now());
  }

  due(limit: number) {
    return this.deps.store.due(this.now(), limit);
  }

  list(options: { provider?: string; cursor?: string; limit: number } & OwnerFilter) {
    return this.deps.store.list(options);
  }

  /** Deletes at once; revokes at the provider afterwards, best effort, within PROVIDER_TIMEOUT. */
  async delete(provider: Provider, connectionId: string): Promise<void> {
    const record = await this.deps.store.take(provider.id, connectionId);
    if (!record) throw connectionNotFound(provider.id, connectionId);
    this.deps.events.emit({
      type: 'connection.deleted',
      provider: provider.id,
      connection_id: connectionId,
      ...ownerOf(record),
    });
    if (record.auth_mode !== 'oauth2' || !provider.revocation_url) return;
    let secrets: ConnectionSecrets;
    try {
      secrets = openSecrets(this.deps.keyRing, provider.id, record.connection_id, record);
    } catch (error) {
      this.deps.logger.warn(
        { provider: provider.id, connection_id: connectionId, err: errorForLog(error) },
        'revocation failed',
      );
      return;
    }
    this.deps.revocations.revokeLater(provider, connectionId, secrets);
  }

  /**
   * Graceful shutdown: waits for the refreshes already sent to the provider and their late writes
   * (bounded by the refresh lock's TTL), then for the revocations under way, those the refreshes
   * may have started included (each bounded by PROVIDER_TIMEOUT).
   */
  async drain(): Promise<void> {
    await this.coordinator.drain();
    await this.deps.revocations.drain();
  }

  /** How long a refresh may hold its lock: the bound of `drain()`'s wait for refreshes. */
  get refreshLockTtlMs(): number {
    return this.coordinator.lockTtlMs;
  }

  /**
   * Re-seals one connection under the ring's first key, under the refresh lock and by
   * compare-and-set, so a refresh meanwhile is never undone.
   */
  async reseal(
    providerId: string,
    connectionId: string,
  ): Promise<'resealed' | 'current' | 'busy' | 'changed' | 'gone'> {
    const taken = await this.coordinator.takeLock(providerId, connectionId, 10_000);
    if (!taken) return 'busy';
    const { held, record } = taken;
    try {
      if (!record) return 'gone';
      if (record.key_id === this.deps.keyRing.activeKeyId) return 'current';
      const secrets = openSecrets(this.deps.keyRing, providerId, connectionId, record);
      const sealed = sealSecrets(this.deps.keyRing, providerId, connectionId, secrets);
      const version = await this.deps.store.patch(
        providerId,
        connectionId,
        { key_id: sealed.keyId, sealed: sealed.data },
        record.updated_at,
        record,
      );
      return version === null ? 'changed' : 'resealed';
    } finally {
      await held.release();
    }
  }

  /** Refresh-ahead candidates are the connections someone reads: note the first read after a refresh. */
  private noteRead(provider: Provider, record: StoredConnection): void {
    if (
      !this.deps.settings.refreshAhead ||
      record.read_since_refresh ||
      !record.refreshable ||
      record.expires_at === null
    )
      return;
    const settings = this.scheduleSettings(provider);
    // A connection in backoff keeps its retry time: a read must not hurry a failing provider.
    const ahead =
      record.refresh_failures > 0
        ? null
        : refreshAheadAt({ ...record, read_since_refresh: true }, settings, this.now());
    // Tied to the version read: a mark computed from tokens a refresh has just replaced is dropped.
    void this.deps.store
      .markRead(provider.id, record.connection_id, ahead, record)
      .catch((error: unknown) => {
        this.deps.logger.debug({ err: errorForLog(error) }, 'could not note a read');
      });
  }

  private async markExpiredWithoutRefreshToken(record: StoredConnection): Promise<void> {
    const now = this.now();
    await this.deps.store.patch(
      record.provider,
      record.connection_id,
      {
        status: 'reauthorization_required',
        last_error: {
          code: 'reauthorization_required',
          message: 'access token expired without a refresh token',
          at: now,
        },
        next_refresh_at: null,
      },
      now,
      record,
    );
    this.deps.events.emit({
      type: 'connection.reauthorization_required',
      provider: record.provider,
      connection_id: record.connection_id,
      ...ownerOf(record),
      reason: 'expired_without_refresh_token',
    });
  }
}

function connectionNotFound(providerId: string, connectionId: string): BrokerError {
  return new BrokerError(
    'connection_not_found',
    `No connection "${connectionId}" for provider "${providerId}".`,
  );
}

function oauthAnswer(
  record: Pick<StoredConnection, 'expires_at' | 'scopes'>,
  secrets: ConnectionSecrets,
): TokenAnswer {
  return {
    auth_mode: 'oauth2',
    access_token: secrets.access_token ?? '',
    token_type: secrets.token_type || 'Bearer',
    expires_at: record.expires_at === null ? null : new Date(record.expires_at).toISOString(),
    scopes: record.scopes,
  };
}

function apiKeyAnswer(provider: Provider, secrets: ConnectionSecrets): TokenAnswer {
  const { header, prefix } = provider.api_key ?? DEFAULT_API_KEY_SETTINGS;
  const key = secrets.api_key ?? '';
  return {
    auth_mode: 'api_key',
    api_key: key,
    headers: { [header]: `${prefix}${key}` },
    expires_at: null,
    scopes: [],
  };
}
