import { BrokerError } from '../errors/broker-error';
import { Provider } from '../providers/provider-definition';
import { ProviderRegistry } from '../providers/provider-registry';
import { unknownProviderMessage } from '../providers/unknown-provider-message';

/** The enabled provider of that id, or the 404 that says which problem it is. */
export function resolveProvider(registry: ProviderRegistry, id: unknown): Provider {
  const provider = typeof id === 'string' ? registry.get(id) : undefined;
  if (!provider) throw new BrokerError('provider_not_found', unknownProviderMessage(registry, id));
  if (!provider.enabled) {
    throw new BrokerError(
      'provider_not_enabled',
      `Provider "${provider.id}" is known but not enabled: set ${provider.env_prefix}_CLIENT_ID and ${provider.env_prefix}_CLIENT_SECRET.`,
    );
  }
  return provider;
}
