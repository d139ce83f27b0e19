import { BrokerProblemError, BrokerRequestError } from './broker-problem-error';
import {
  Connection,
  ConnectionPage,
  ConnectSession,
  ConnectSessionRequest,
  ImportRequest,
  OAuthTokenAnswer,
  OwnerFields,
  ProblemBody,
  ProviderInfo,
  TokenAnswer,
} from './types';

export interface BrokerClientOptions {
  /** The broker's internal listener, e.g. `http://127.0.0.1:3001`. */
  baseUrl: string;
  /** One of the broker's INTERNAL_API_KEYS. */
  apiKey: string;
  /** Extra attempts after a retryable answer (`retryable: true` or 503); default 3. */
  retries?: number;
  /** First backoff in ms, doubled each attempt, with jitter; default 200. */
  retryBaseDelayMs?: number;
  /** Longest backoff in ms; default 5000. */
  retryMaxDelayMs?: number;
  /** Per request; default 15000 (a refresh may wait for a provider up to PROVIDER_TIMEOUT). */
  timeoutMs?: number;
  /** `minValidity` when a call names none; default 300 (the broker's default REFRESH_MARGIN). */
  defaultMinValidity?: number;
  /** Tokens kept in process; 0 turns the cache off; default 10000. */
  maxCachedTokens?: number;
  /** Defaults to the global fetch (Node 20). */
  fetch?: typeof fetch;
  /** Clock, for tests. */
  now?: () => number;
}

export interface GetTokenOptions {
  /** Seconds the token must stay valid (0–86400). */
  minValidity?: number;
  /** Refresh at the provider whatever the token's age (say after the provider refused it). */
  forceRefresh?: boolean;
}

export interface ListConnectionsOptions {
  provider?: string;
  cursor?: string;
  /** 1–1000, default 50. */
  limit?: number;
  /** Only the connections of this end user. */
  endUserId?: string;
  /** Only connections carrying every one of these tags (at most 10). */
  tags?: Record<string, string>;
}

interface RequestOptions {
  query?: Record<string, string | string[] | undefined>;
  body?: unknown;
  /** A 404 `connection_not_found` after a retried attempt means an earlier attempt did it. */
  goneMeansDone?: boolean;
}

interface Answer {
  status: number;
  body: unknown;
}

/** Codes after which a cached token must not be served again. */
const DROP_CACHE_CODES = new Set([
  'connection_not_found',
  'reauthorization_required',
  'provider_not_found',
  'provider_not_enabled',
]);

/**
 * A typed client for the broker's internal API. Tokens are cached in process and served while
 * they stay valid for the `minValidity` asked for (by their `expires_at`); concurrent calls for
 * the same token share one request. Only answers the broker marks `retryable: true`, and 503s,
 * are retried, with exponential backoff and jitter; every other failure is thrown at once as a
 * `BrokerProblemError` with the broker's stable `code`.
 */
export class BrokerClient {
  private readonly baseUrl: string;
  private readonly cache = new Map<string, { answer: OAuthTokenAnswer; expiresAtMs: number }>();
  private readonly inFlight = new Map<string, Promise<TokenAnswer>>();
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: BrokerClientOptions) {
    if (!options.baseUrl) throw new TypeError('BrokerClient: baseUrl is required');
    if (!options.apiKey) throw new TypeError('BrokerClient: apiKey is required');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
  }

  /**
   * A token valid for at least `minValidity` seconds: from the cache when the cached one is,
   * else from the broker (which refreshes it first when needed). `forceRefresh` skips the cache.
   */
  async getToken(
    provider: string,
    connectionId: string,
    options: GetTokenOptions = {},
  ): Promise<TokenAnswer> {
    const minValidity = options.minValidity ?? this.options.defaultMinValidity ?? 300;
    const key = cacheKey(provider, connectionId);
    if (!options.forceRefresh) {
      const cached = this.cache.get(key);
      if (cached && cached.expiresAtMs - this.now() >= minValidity * 1000) return { ...cached.answer };
    }
    const flightKey = `${key}\u0000${minValidity}\u0000${options.forceRefresh ? 1 : 0}`;
    const existing = this.inFlight.get(flightKey);
    if (existing) return existing.then((answer) => ({ ...answer }));
    const flight = this.fetchToken(
      provider,
      connectionId,
      key,
      minValidity,
      options.forceRefresh === true,
    ).finally(() => this.inFlight.delete(flightKey));
    this.inFlight.set(flightKey, flight);
    return flight.then((answer) => ({ ...answer }));
  }

  /** A single-use connect link for a browser. */
  async createConnectSession(request: ConnectSessionRequest): Promise<ConnectSession> {
    const answer = await this.request('POST', '/internal/connect-sessions', { body: request });
    return answer.body as ConnectSession;
  }

  /** A connection's metadata (never secrets). */
  async getConnection(provider: string, connectionId: string): Promise<Connection> {
    const answer = await this.request('GET', connectionPath(provider, connectionId));
    return answer.body as Connection;
  }

  /** Deletes a connection (the broker revokes at the provider afterwards) and forgets its token. */
  async deleteConnection(provider: string, connectionId: string): Promise<void> {
    this.invalidate(provider, connectionId);
    await this.request('DELETE', connectionPath(provider, connectionId), { goneMeansDone: true });
  }

  /** One page of connections; pass `next_cursor` back as `cursor` until it is null. */
  async listConnections(options: ListConnectionsOptions = {}): Promise<ConnectionPage> {
    const answer = await this.request('GET', '/internal/connections', {
      query: {
        provider: options.provider,
        cursor: options.cursor,
        limit: options.limit === undefined ? undefined : String(options.limit),
        end_user_id: options.endUserId,
        tag: options.tags && Object.entries(options.tags).map(([k, v]) => `${k}:${v}`),
      },
    });
    return answer.body as ConnectionPage;
  }

  /** Every connection, page by page. */
  async *iterateConnections(
    options: Omit<ListConnectionsOptions, 'cursor'> = {},
  ): AsyncGenerator<Connection> {
    let cursor: string | undefined;
    do {
      const page = await this.listConnections({ ...options, cursor });
      yield* page.connections;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Imports tokens (or an API key) obtained elsewhere; `created` tells new from replaced. */
  async importConnection(
    provider: string,
    connectionId: string,
    tokens: ImportRequest,
  ): Promise<{ created: boolean; connection: Connection }> {
    this.invalidate(provider, connectionId);
    const answer = await this.request('PUT', connectionPath(provider, connectionId), { body: tokens });
    return { created: answer.status === 201, connection: answer.body as Connection };
  }

  /** Replaces the `end_user` and/or `tags` that `change` names; answers the metadata. */
  async updateConnection(provider: string, connectionId: string, change: OwnerFields): Promise<Connection> {
    const answer = await this.request('PATCH', connectionPath(provider, connectionId), { body: change });
    return answer.body as Connection;
  }

  /** The enabled providers, their scopes and redirect URIs. */
  async listProviders(): Promise<ProviderInfo[]> {
    const answer = await this.request('GET', '/internal/providers');
    return (answer.body as { providers: ProviderInfo[] }).providers;
  }

  /** Forgets the cached token of one connection (say after the provider refused it). */
  invalidate(provider: string, connectionId: string): void {
    this.cache.delete(cacheKey(provider, connectionId));
  }

  clearCache(): void {
    this.cache.clear();
  }

  private async fetchToken(
    provider: string,
    connectionId: string,
    key: string,
    minValidity: number,
    forceRefresh: boolean,
  ): Promise<TokenAnswer> {
    try {
      const answer = await this.request('GET', `${connectionPath(provider, connectionId)}/token`, {
        query: { min_validity: String(minValidity), force_refresh: forceRefresh ? 'true' : undefined },
      });
      const token = answer.body as TokenAnswer;
      this.remember(key, token);
      return token;
    } catch (error) {
      if (error instanceof BrokerProblemError && DROP_CACHE_CODES.has(error.code)) this.cache.delete(key);
      throw error;
    }
  }

  /** Only tokens with a known expiry are cached: without one, validity cannot be judged. */
  private remember(key: string, token: TokenAnswer): void {
    const limit = this.options.maxCachedTokens ?? 10_000;
    const expiresAtMs = token.expires_at === null ? NaN : Date.parse(token.expires_at);
    if (limit <= 0 || token.auth_mode !== 'oauth2' || !Number.isFinite(expiresAtMs)) {
      this.cache.delete(key);
      return;
    }
    this.cache.delete(key);
    this.cache.set(key, { answer: { ...token }, expiresAtMs });
    while (this.cache.size > limit) this.cache.delete(this.cache.keys().next().value!);
  }

  private async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {}))
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(name, item);
      else if (value !== undefined) url.searchParams.set(name, value);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      accept: 'application/json',
    };
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const retries = Math.max(0, this.options.retries ?? 3);

    for (let attempt = 0; ; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(url, {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
        });
        text = await response.text();
      } catch (error) {
        // The key is in the headers only; the message names the method and path, nothing else.
        throw new BrokerRequestError(`${method} ${path}: broker unreachable or timed out`, { cause: error });
      }
      if (response.ok) return { status: response.status, body: text ? parseJson(text) : undefined };

      const problem = parseProblem(text, response.status);
      if (
        options.goneMeansDone &&
        attempt > 0 &&
        response.status === 404 &&
        problem?.code === 'connection_not_found'
      ) {
        return { status: 204, body: undefined };
      }
      const retryable = response.status === 503 || problem?.retryable === true;
      if (!retryable || attempt >= retries) {
        if (problem) throw new BrokerProblemError(problem);
        throw new BrokerRequestError(
          `${method} ${path}: the broker answered ${response.status} without a problem body`,
          {
            status: response.status,
          },
        );
      }
      await sleep(this.backoff(attempt));
    }
  }

  /** Exponential backoff with "equal jitter": between half and all of base·2^attempt, capped. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(
      this.options.retryMaxDelayMs ?? 5000,
      (this.options.retryBaseDelayMs ?? 200) * 2 ** attempt,
    );
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

function cacheKey(provider: string, connectionId: string): string {
  return `${provider}\u0000${connectionId}`;
}

function connectionPath(provider: string, connectionId: string): string {
  return `/internal/connections/${encodeURIComponent(provider)}/${encodeURIComponent(connectionId)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BrokerRequestError('the broker answered a body that is not JSON');
  }
}

function parseProblem(text: string, status: number): ProblemBody | undefined {
  try {
    const body = JSON.parse(text) as Partial<ProblemBody>;
    if (body && typeof body === 'object' && typeof body.code === 'string') {
      return {
        type: '',
        title: '',
        detail: '',
        ...body,
        status: typeof body.status === 'number' ? body.status : status,
      } as ProblemBody;
    }
  } catch {
    // not a problem body
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
