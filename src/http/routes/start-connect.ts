import type { RequestHandler } from 'express';
import { FlowStart, FlowStore } from '../../connections/flow-store';
import { BrokerMetrics } from '../../observability/metrics';
import { Logger } from '../../observability/logger';
import { buildAuthorizationUrl } from '../../oauth/build-authorization-url';
import { createCodeVerifier } from '../../oauth/pkce';
import { randomToken } from '../../oauth/random-token';
import { ProviderRegistry } from '../../providers/provider-registry';
import { startFlow } from '../flow-session';
import { apiKeyFormPage, failurePage } from '../pages/connect-pages';
import { sendPage } from '../pages/send-page';
import { pageProvider } from './page-provider';

export interface StartConnectDeps {
  registry: ProviderRegistry;
  flows: FlowStore;
  logger: Logger;
  metrics: Pick<BrokerMetrics, 'connectAttempts'>;
}

/**
 * `GET /auth/:provider?session=…`, the connect link: uses up the connect session, starts a flow
 * bound to this browser, then sends it to the provider (OAuth 2.0) or shows the API-key form.
 */
export function startConnect(deps: StartConnectDeps): RequestHandler {
  const log = deps.logger;
  return async (req, res) => {
    const provider = pageProvider(deps.registry, req, res);
    if (!provider) return;
    const token = req.query.session;
    if (typeof token !== 'string' || token === '')
      return sendPage(res, 400, failurePage('missing_session', provider.display_name));
    const start: FlowStart = { created_at: Date.now(), scopes: provider.scopes };
    if (provider.auth_mode === 'oauth2') start.code_verifier = createCodeVerifier();
    else start.csrf = randomToken(32);
    const started = await startFlow(req, deps.flows, token, provider.id, start);
    if (!started.ok) {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: started.reason });
      const page = started.reason === 'wrong_provider' ? 'wrong_provider' : 'invalid_session';
      return sendPage(res, 400, failurePage(page, provider.display_name));
    }
    const { flowId, flow } = started;
    deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'started' });
    log.info(
      { provider: provider.id, connection_id: flow.connection_id, auth_mode: provider.auth_mode },
      'connect started',
    );

    if (provider.auth_mode === 'api_key') {
      return sendPage(
        res,
        200,
        apiKeyFormPage({
          provider: provider.id,
          displayName: provider.display_name,
          flowId,
          csrf: flow.csrf!,
        }),
      );
    }
    res.redirect(
      302,
      buildAuthorizationUrl(provider, {
        state: flowId,
        codeVerifier: flow.code_verifier!,
        scopes: flow.scopes,
      }),
    );
  };
}
