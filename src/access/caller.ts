import { BrokerError } from '../errors/broker-error';
import { AccessAction } from './access-actions';

/** What a caller may do: every action and provider (an INTERNAL_API_KEYS key), or a service's grant. */
export interface Grant {
  /** `'*'`: every provider. */
  readonly providers: '*' | ReadonlySet<string>;
  readonly actions: ReadonlySet<AccessAction>;
}

/** Who is asking: the audit log's `actor` and the grant the key carries. */
export interface Caller {
  /** The service's name, or `key:<first 8 hex of SHA-256>` for an INTERNAL_API_KEYS key. */
  readonly actor: string;
  readonly grant: Grant;
  /** A service key (scoped), as opposed to an INTERNAL_API_KEYS key. */
  readonly scoped: boolean;
}

/**
 * The one rule of who may do what. The action first, then the provider, both before anything is
 * looked up: a refusal names only what the caller asked for, so a scoped key cannot tell a missing
 * connection (or provider) beyond its grant from one that exists.
 */
export function refusal(caller: Caller, action: AccessAction, provider?: string): BrokerError | undefined {
  const { grant } = caller;
  if (!grant.actions.has(action))
    return new BrokerError('forbidden', `This key may not take the action "${action}".`, {
      extra: { refused: { action } },
    });
  if (provider !== undefined && grant.providers !== '*' && !grant.providers.has(provider))
    return new BrokerError('forbidden', `This key may not touch provider "${safeId(provider)}".`, {
      extra: { refused: { provider: safeId(provider) } },
    });
  return undefined;
}

/** The providers a listing may show the caller: all, or its grant's (sorted, as the listing pages). */
export function visibleProviders(caller: Caller): '*' | string[] {
  return caller.grant.providers === '*' ? '*' : [...caller.grant.providers].sort();
}

/** A caller-supplied id, echoed only in the characters an id may hold. */
function safeId(value: string): string {
  return value.slice(0, 64).replace(/[^A-Za-z0-9._:@-]/g, '?');
}
