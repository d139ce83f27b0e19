import type { Request, Response } from 'express';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { providerNotEnabledPage, unknownProviderPage } from '../pages/connect-pages';
import { sendPage } from '../pages/send-page';

/**
 * The enabled provider a browser route names, or a 404 page that says which problem it is: the
 * browser's twin of `resolveProvider` (which answers the internal API with problem+json).
 */
export function pageProvider(registry: ProviderRegistry, req: Request, res: Response): Provider | undefined {
  const id = String(req.params.provider);
  const provider = registry.get(id);
  if (!provider) {
    sendPage(res, 404, unknownProviderPage(id));
    return undefined;
  }
  if (!provider.enabled) {
    sendPage(res, 404, providerNotEnabledPage(provider));
    return undefined;
  }
  return provider;
}
