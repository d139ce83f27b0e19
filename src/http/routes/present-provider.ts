import { DEFAULT_API_KEY_SETTINGS, Provider } from '../../providers/provider-definition';
import { ProviderInfo } from '../schemas/answers';

/** A provider as the API and CLI show it: what a caller needs, never credentials. */
export function presentProvider(provider: Provider): ProviderInfo {
  return {
    id: provider.id,
    display_name: provider.display_name,
    auth_mode: provider.auth_mode,
    scopes: provider.auth_mode === 'oauth2' ? provider.scopes : [],
    redirect_uri: provider.auth_mode === 'oauth2' ? provider.redirect_uri : null,
    issuer: provider.issuer ?? null,
    pkce: provider.pkce,
    refresh_token_rotation: provider.refresh_token_rotation,
    keepalive_after: provider.keepalive_seconds,
    api_base_url: provider.api_base_url ?? null,
    api_headers: provider.api_headers ?? {},
    api_key_header:
      provider.auth_mode === 'api_key' ? (provider.api_key ?? DEFAULT_API_KEY_SETTINGS).header : null,
    docs_url: provider.docs_url ?? null,
  };
}
