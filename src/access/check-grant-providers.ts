import { ConfigError } from '../config/config-error';
import { ProviderRegistry } from '../providers/provider-registry';
import { ServiceKey } from './load-service-keys';

/**
 * A grant naming a provider the broker does not know is a typo that would quietly grant nothing:
 * it stops start-up, naming the service and the provider. (A known but disabled provider is fine:
 * enabling it later needs no change to the file.)
 */
export function checkGrantProviders(
  services: readonly ServiceKey[],
  registry: Pick<ProviderRegistry, 'get'>,
): void {
  const problems: string[] = [];
  services.forEach((service, index) => {
    if (service.providers === '*') return;
    for (const id of service.providers) {
      if (!registry.get(id))
        problems.push(
          `SERVICE_KEYS_FILE: service ${index + 1} (${service.name}): providers: unknown provider "${id}"`,
        );
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
}
