import type { IncomingMessage } from 'node:http';
import { AccessAction } from '../access/access-actions';
import { Caller, refusal } from '../access/caller';
import { CallerResolver } from '../access/caller-resolver';
import { AuditLog } from '../audit/audit-log';
import { BrokerError } from '../errors/broker-error';
import { BrokerMetrics } from '../observability/metrics';

/** What a request is about: the provider and connection it names, as far as it names them. */
export interface AccessTarget {
  provider?: string;
  connectionId?: string;
}

export interface InternalAccessDeps {
  resolve: CallerResolver;
  audit: AuditLog;
  metrics: BrokerMetrics;
}

/** Provider and connection of a path the caller sent, for a 401's entry (only in the characters ids hold). */
const TARGET_IN_PATH =
  /^\/internal\/(?:connections|proxy)\/([a-z0-9-]{1,64})\/([A-Za-z0-9._:@-]{1,200})(?:[/?]|$)/;

/**
 * The internal API's one gate, for the Express routes, the token API's fast path and the proxy
 * alike (all on Node's own request): who is calling (`resolve`), whether the caller may do this
 * (`authorize`, which writes the refusal's audit entry and counts it), and the fail-closed
 * hand-out entry (`handOut`) that must be in Redis before a credential leaves.
 */
export class InternalAccess {
  private readonly refusals = new Map<string, { inc(): void }>();
  private readonly handOuts = new Map<string, { inc(): void }>();

  constructor(private readonly deps: InternalAccessDeps) {}

  /** The caller an `Authorization` header authenticates, or undefined. */
  resolve(header: string | undefined): Caller | undefined {
    return this.deps.resolve(header);
  }

  /**
   * The caller of `req` when it may take `action` on `target.provider`; otherwise throws the
   * `401 unauthorized` or `403 forbidden` to answer, its audit entry written and counted. Call it
   * before looking anything up, so a refusal tells nothing about what exists beyond the grant.
   */
  authorize(req: IncomingMessage, action: AccessAction, target: AccessTarget, requestId?: string): Caller {
    const caller = this.resolve(req.headers.authorization);
    if (!caller) {
      this.refusedUnauthorized(req, requestId);
      throw unauthorizedError();
    }
    this.check(caller, req, action, target, requestId);
    return caller;
  }

  /** Throws `403 forbidden` (its entry written and counted) when `caller` may not take `action` on `target`. */
  check(
    caller: Caller,
    req: IncomingMessage,
    action: AccessAction,
    target: AccessTarget,
    requestId?: string,
  ): void {
    const refused = refusal(caller, action, target.provider);
    if (!refused) return;
    this.count(this.refusals, `${caller.actor}\0forbidden`, () =>
      this.deps.metrics.authRefusals.labels({ actor: caller.actor, code: 'forbidden' }),
    );
    this.deps.audit.record({
      actor: caller.actor,
      action: 'forbidden',
      provider: target.provider,
      connection_id: target.connectionId,
      status: 403,
      request_id: requestId,
      ip: req.socket?.remoteAddress,
    });
    throw refused;
  }

  /** Writes and counts a 401's entry; the caller's key is not known, so neither is its actor. */
  refusedUnauthorized(req: IncomingMessage, requestId?: string): void {
    this.count(this.refusals, '\0unauthorized', () =>
      this.deps.metrics.authRefusals.labels({ actor: 'unknown', code: 'unauthorized' }),
    );
    const target = TARGET_IN_PATH.exec(req.url ?? '');
    this.deps.audit.record({
      actor: 'unknown',
      action: 'unauthorized',
      provider: target?.[1],
      connection_id: target?.[2],
      status: 401,
      request_id: requestId,
      ip: req.socket?.remoteAddress,
    });
  }

  /**
   * Records a credential hand-out (the token API's 200, a proxied request) and resolves once the
   * entry is in Redis; rejects with `503 store_unavailable` when it cannot be written, and then
   * nothing may be handed out.
   */
  async handOut(
    caller: Caller,
    req: IncomingMessage,
    action: 'token' | 'proxy',
    target: Required<AccessTarget>,
    requestId?: string,
    status = 200,
  ): Promise<void> {
    await this.deps.audit.handOut(entryOf(caller, req, action, target, status, requestId));
    this.count(this.handOuts, `${caller.actor}\0${action}`, () =>
      this.deps.metrics.handOuts.labels({ actor: caller.actor, action }),
    );
  }

  /** Records a change already made (connect, import, PATCH, delete); never fails the request. */
  changed(
    caller: Pick<Caller, 'actor'>,
    req: IncomingMessage,
    action: 'import' | 'patch' | 'delete' | 'connect',
    target: Required<AccessTarget>,
    status: number,
    requestId?: string,
  ): void {
    this.deps.audit.record(entryOf(caller, req, action, target, status, requestId));
  }

  /** prom-client hashes a label object on every call: each actor's series is looked up once. */
  private count(cache: Map<string, { inc(): void }>, key: string, make: () => { inc(): void }): void {
    let series = cache.get(key);
    if (!series) {
      series = make();
      cache.set(key, series);
    }
    series.inc();
  }
}

export function unauthorizedError(): BrokerError {
  return new BrokerError(
    'unauthorized',
    'A valid internal API key is required (Authorization: Bearer <key>).',
  );
}

/** The audit entry of a request that named a connection: who, what, on which, answered how. */
function entryOf(
  caller: Pick<Caller, 'actor'>,
  req: IncomingMessage,
  action: 'token' | 'proxy' | 'import' | 'patch' | 'delete' | 'connect',
  target: Required<AccessTarget>,
  status: number,
  requestId: string | undefined,
) {
  return {
    actor: caller.actor,
    action,
    provider: target.provider,
    connection_id: target.connectionId,
    status,
    request_id: requestId,
    ip: req.socket?.remoteAddress,
  };
}
