import { ProviderHttp } from './provider-http';
import { Provider } from '../providers/provider-definition';

/**
 * One request to the provider's declared `verify_url` with the key as the API expects it:
 * 2xx accepts, 401/403 refuses, anything else (or a timeout) leaves it unchecked.
 */
export async function verifyApiKey(
  http: ProviderHttp,
  provider: Pick<Provider, 'api_key'>,
  apiKey: string,
): Promise<'accepted' | 'refused' | 'unavailable'> {
  const settings = provider.api_key;
  if (!settings?.verify_url) return 'accepted';
  try {
    const response = await http({
      method: settings.verify_method,
      url: settings.verify_url,
      headers: { [settings.header]: `${settings.prefix}${apiKey}`, Accept: 'application/json' },
    });
    if (response.status >= 200 && response.status < 300) return 'accepted';
    if (response.status === 401 || response.status === 403) return 'refused';
    return 'unavailable';
  } catch {
    return 'unavailable';
  }
}
