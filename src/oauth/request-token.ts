import { Provider } from '../providers/provider-definition';
import { CircuitBreaker } from './circuit-breaker';
import { clientAuthentication, encodeBody } from './client-authentication';
import { TokenSet, parseTokenResponse } from './parse-token-response';
import { ProviderHttp, ProviderNetworkError } from './provider-http';
import { TokenEndpointError } from './token-endpoint-error';

export type TokenGrant =
  | { grant_type: 'authorization_code'; code: string; code_verifier?: string; redirect_uri: string }
  | { grant_type: 'refresh_token'; refresh_token: string; scope?: string };

export interface TokenEndpointDeps {
  http: ProviderHttp;
  breakers: Map<string, CircuitBreaker>;
  /** Extra tries for failures that are safe to repeat; 0 disables retries. */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Circuit breaker settings for new breakers; the breaker's defaults otherwise. */
  circuit?: { threshold: number; openMs: number };
}

type TokenProvider = Pick<
  Provider,
  'id' | 'token_url' | 'token_request' | 'client_auth' | 'client_id' | 'client_secret' | 'expiry'
>;

/**
 * Calls the token endpoint (RFC 6749 §4.1.3 code exchange, §6 refresh) and checks the answer.
 * Repeats a call only where that is safe: a connection that never reached the provider, or a 5xx
 * on a refresh (the provider kept the old refresh token when it failed). A code is single use, so
 * a code exchange that may have reached the provider is never repeated.
 */
export async function requestToken(
  deps: TokenEndpointDeps,
  provider: TokenProvider,
  grant: TokenGrant,
): Promise<TokenSet> {
  const breaker = breakerFor(deps.breakers, provider.id, deps.circuit);
  if (!breaker.allow())
    throw new TokenEndpointError('unavailable', 'provider circuit open after repeated failures');

  const auth = clientAuthentication(provider);
  const params: Record<string, string> = { ...definedOnly(grant), ...auth.params };
  const { contentType, body } = encodeBody(provider.token_request, params);
  const retries = deps.retries ?? 1;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  for (let attempt = 0; ; attempt++) {
    try {
      const response = await deps.http({
        method: 'POST',
        url: provider.token_url!,
        headers: { 'Content-Type': contentType, Accept: 'application/json', ...auth.headers },
        body,
      });
      const tokens = parseTokenResponse(response, provider.expiry);
      breaker.succeeded();
      return tokens;
    } catch (error) {
      const failure = toTokenEndpointError(error);
      const repeatable =
        (error instanceof ProviderNetworkError && error.notSent) ||
        (grant.grant_type === 'refresh_token' &&
          failure.kind === 'unavailable' &&
          (failure.httpStatus ?? 0) >= 500);
      if (failure.kind === 'unavailable') breaker.failed();
      else breaker.succeeded();
      if (!repeatable || attempt >= retries || !breaker.allow()) throw failure;
      // Full jitter, so processes that failed together do not come back together.
      await sleep(100 + Math.random() * 200 * 2 ** attempt);
    }
  }
}

export function toTokenEndpointError(error: unknown): TokenEndpointError {
  if (error instanceof TokenEndpointError) return error;
  if (error instanceof ProviderNetworkError) return new TokenEndpointError('unavailable', error.message);
  return new TokenEndpointError('unavailable', 'token endpoint call failed');
}

export function breakerFor(
  breakers: Map<string, CircuitBreaker>,
  providerId: string,
  settings?: { threshold: number; openMs: number },
): CircuitBreaker {
  let breaker = breakers.get(providerId);
  if (!breaker) {
    breaker = settings ? new CircuitBreaker(settings.threshold, settings.openMs) : new CircuitBreaker();
    breakers.set(providerId, breaker);
  }
  return breaker;
}

function definedOnly(grant: TokenGrant): Record<string, string> {
  return Object.fromEntries(Object.entries(grant).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
}
