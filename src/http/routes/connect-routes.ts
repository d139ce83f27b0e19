import { Router } from 'express';
import { ConnectCallbackDeps, connectCallback } from './connect-callback';
import { StartConnectDeps, startConnect } from './start-connect';
import { SubmitApiKeyDeps, apiKeyFormBody, submitApiKey } from './submit-api-key';

export type ConnectRoutesDeps = StartConnectDeps & SubmitApiKeyDeps & ConnectCallbackDeps;

/**
 * The browser's side of a connection, one step per file: `GET /auth/:provider` (a connect link),
 * `POST /auth/:provider` (the API-key form) and `GET /callback/:provider` (the provider's answer).
 * One router for every provider: they differ only by their definitions.
 */
export function createConnectRoutes(deps: ConnectRoutesDeps): Router {
  const router = Router();
  router.get('/auth/:provider', startConnect(deps));
  router.post('/auth/:provider', apiKeyFormBody(), submitApiKey(deps));
  router.get('/callback/:provider', connectCallback(deps));
  return router;
}
