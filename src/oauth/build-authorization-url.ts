import { Provider } from '../providers/provider-definition';
import { codeChallengeS256 } from './pkce';

export interface AuthorizationRequest {
  state: string;
  codeVerifier: string;
  scopes: string[];
}

/**
 * The authorization request of the code flow (RFC 6749 §4.1.1) with PKCE (RFC 7636 §4.3).
 * The catalogue's `authorization_params` come first, so they can never replace a protocol
 * parameter; `redirect_uri` is always the configured one, never built from request headers
 * (RFC 9700 §4.1).
 */
export function buildAuthorizationUrl(
  provider: Pick<
    Provider,
    'authorization_url' | 'authorization_params' | 'client_id' | 'redirect_uri' | 'scope_separator' | 'pkce'
  >,
  request: AuthorizationRequest,
): string {
  const url = new URL(provider.authorization_url!);
  for (const [name, value] of Object.entries(provider.authorization_params))
    url.searchParams.set(name, value);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', provider.client_id ?? '');
  url.searchParams.set('redirect_uri', provider.redirect_uri);
  url.searchParams.set('state', request.state);
  if (request.scopes.length > 0) url.searchParams.set('scope', request.scopes.join(provider.scope_separator));
  else url.searchParams.delete('scope');
  if (provider.pkce === 'S256') {
    url.searchParams.set('code_challenge', codeChallengeS256(request.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
  }
  return url.toString();
}
