import { Provider } from '../providers/provider-definition';
import { clientAuthentication } from './client-authentication';
import { ProviderHttp } from './provider-http';

/**
 * Token revocation (RFC 7009 §2.1): best effort, one call, the refresh token when there is one
 * (revoking it revokes the grant), else the access token. Returns whether the server accepted.
 */
export async function revokeToken(
  http: ProviderHttp,
  provider: Pick<Provider, 'revocation_url' | 'client_auth' | 'client_id' | 'client_secret'>,
  token: { value: string; hint: 'refresh_token' | 'access_token' },
): Promise<boolean> {
  if (!provider.revocation_url) return false;
  const auth = clientAuthentication(provider);
  const body = new URLSearchParams({
    token: token.value,
    token_type_hint: token.hint,
    ...auth.params,
  }).toString();
  const response = await http({
    method: 'POST',
    url: provider.revocation_url,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth.headers },
    body,
  });
  return response.status >= 200 && response.status < 300;
}
