import { TokenAnswer } from '../connections/connection-service';

/**
 * The headers that carry a connection's credential upstream, from the same answer the token API
 * gives: `Authorization: <token_type> <access_token>` for oauth2 (RFC 6750 §2.1; a provider's
 * lower-case `bearer` is sent as `Bearer`, the scheme's registered spelling, since some APIs
 * compare it case-sensitively), the `api_key` block's header and prefix for an API key.
 */
export function credentialHeaders(answer: TokenAnswer): Record<string, string> {
  if (answer.auth_mode === 'api_key') return { ...answer.headers };
  const type = answer.token_type.toLowerCase() === 'bearer' ? 'Bearer' : answer.token_type;
  return { Authorization: `${type} ${answer.access_token}` };
}
