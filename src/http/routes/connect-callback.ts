import type { RequestHandler } from 'express';
import { ConnectionService } from '../../connections/connection-service';
import { FlowStore } from '../../connections/flow-store';
import { BrokerMetrics } from '../../observability/metrics';
import { Logger } from '../../observability/logger';
import { TokenEndpointDeps, requestToken, toTokenEndpointError } from '../../oauth/request-token';
import { ProviderRegistry } from '../../providers/provider-registry';
import { hasFlowSession, isFlowExpired, takeFlow } from '../flow-session';
import { failurePage } from '../pages/connect-pages';
import { sendPage } from '../pages/send-page';
import { withQuery } from '../return-to';
import { FinishConnectDeps, finishConnect, flowOwner } from './finish-connect';
import { pageProvider } from './page-provider';

export interface ConnectCallbackDeps extends FinishConnectDeps {
  registry: ProviderRegistry;
  flows: FlowStore;
  connections: Pick<ConnectionService, 'storeTokens'>;
  tokenEndpoint: TokenEndpointDeps;
  logger: Logger;
  metrics: Pick<BrokerMetrics, 'connectAttempts'>;
}

type CallbackError =
  'access_denied' | 'invalid_issuer' | 'provider_error' | 'token_exchange_failed' | 'provider_unavailable';

/**
 * `GET /callback/:provider`, the provider's answer (RFC 6749 §4.1.2): matches it to this
 * browser's flow, checks the issuer, exchanges the code (with the PKCE verifier) and stores the
 * connection.
 */
export function connectCallback(deps: ConnectCallbackDeps): RequestHandler {
  const log = deps.logger;
  return async (req, res) => {
    const provider = pageProvider(deps.registry, req, res);
    if (!provider) return;
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    // Taken at once and marked used: `state` is single use, whatever happens next (RFC 9700 §4.7.1).
    const taken = await takeFlow(req, deps.flows, state);
    const flow = taken?.flow;
    // Without a flow of this browser and this provider there is no trusted return_to, and no
    // token request is made (RFC 9700 §4.7: CSRF; §4.4: mix-up via another provider's state).
    // A flow of this browser seen at the wrong callback, or too late, is used up all the same:
    // after a mix-up its code may be in other hands (RFC 9700 §4.4).
    if (!flow || flow.provider !== provider.id || flow.code_verifier === undefined || isFlowExpired(flow)) {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'unknown_flow' });
      log.info({ provider: provider.id, has_session: hasFlowSession(req) }, 'callback matched no flow');
      return sendPage(res, 400, failurePage('unknown_flow', provider.display_name));
    }
    if (!taken.fresh) {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'replayed' });
      return sendPage(res, 400, failurePage('unknown_flow', provider.display_name));
    }
    const fail = (code: CallbackError): void => {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: code });
      log.info(
        { provider: provider.id, connection_id: flow.connection_id, outcome: code },
        'callback failed',
      );
      if (flow.return_to) return void res.redirect(303, withQuery(flow.return_to, { error: code }));
      sendPage(res, code === 'provider_unavailable' ? 502 : 400, failurePage(code, provider.display_name));
    };

    // RFC 9207 §2.4: with a declared issuer, `iss` must be there and equal, success or error,
    // checked before anything else in the response is believed.
    if (provider.issuer !== undefined && req.query.iss !== provider.issuer) return fail('invalid_issuer');
    if (req.query.error !== undefined)
      return fail(req.query.error === 'access_denied' ? 'access_denied' : 'provider_error');
    const code = req.query.code;
    if (typeof code !== 'string' || code === '' || code.length > 4096) return fail('provider_error');

    let tokens;
    try {
      tokens = await requestToken(deps.tokenEndpoint, provider, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: provider.redirect_uri,
        code_verifier: provider.pkce === 'S256' ? flow.code_verifier : undefined,
      });
    } catch (error) {
      const failure = toTokenEndpointError(error);
      log.warn(
        {
          provider: provider.id,
          outcome: failure.kind,
          oauth_error: failure.oauthError,
          http_status: failure.httpStatus,
        },
        'code exchange failed',
      );
      return fail(failure.kind === 'unavailable' ? 'provider_unavailable' : 'token_exchange_failed');
    }
    await deps.connections.storeTokens(provider, flow.connection_id, tokens, flow.scopes, flowOwner(flow));
    deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'connected' });
    log.info({ provider: provider.id, connection_id: flow.connection_id }, 'connected');
    finishConnect(deps, req, res, provider, flow);
  };
}
