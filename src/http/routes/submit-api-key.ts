import express, { RequestHandler } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { ConnectionService } from '../../connections/connection-service';
import { FlowStore } from '../../connections/flow-store';
import { BrokerMetrics } from '../../observability/metrics';
import { Logger } from '../../observability/logger';
import { ProviderHttp } from '../../oauth/provider-http';
import { verifyApiKey } from '../../oauth/verify-api-key';
import { ProviderRegistry } from '../../providers/provider-registry';
import { isFlowExpired, peekFlow, takeFlow } from '../flow-session';
import { apiKeyFormPage, failurePage } from '../pages/connect-pages';
import { sendPage } from '../pages/send-page';
import { FinishConnectDeps, finishConnect, flowOwner } from './finish-connect';
import { pageProvider } from './page-provider';

export interface SubmitApiKeyDeps extends FinishConnectDeps {
  registry: ProviderRegistry;
  flows: FlowStore;
  connections: Pick<ConnectionService, 'storeApiKey'>;
  http: ProviderHttp;
  logger: Logger;
  metrics: Pick<BrokerMetrics, 'connectAttempts'>;
}

/** Refused keys one API-key form may send before it is used up (guessing against verify_url). */
export const MAX_REFUSED_KEYS = 5;

/** The API-key form's body parser: small, flat, a few fields. */
export function apiKeyFormBody(): RequestHandler {
  return express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });
}

/**
 * `POST /auth/:provider`, the API-key form: checks the form belongs to this browser's flow (CSRF
 * token), has the provider check the key at its `verify_url` (at most MAX_REFUSED_KEYS refusals
 * per link), then stores the connection once.
 */
export function submitApiKey(deps: SubmitApiKeyDeps): RequestHandler {
  const log = deps.logger;
  return async (req, res) => {
    const provider = pageProvider(deps.registry, req, res);
    if (!provider) return;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const flowId = typeof body.flow === 'string' ? body.flow : '';
    const csrf = typeof body.csrf === 'string' ? body.csrf : '';
    const flow = await peekFlow(req, deps.flows, flowId);
    if (
      provider.auth_mode !== 'api_key' ||
      !flow ||
      flow.provider !== provider.id ||
      !flow.csrf ||
      !constantTimeEqual(flow.csrf, csrf) ||
      isFlowExpired(flow)
    ) {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'invalid_form' });
      return sendPage(res, 400, failurePage('invalid_form', provider.display_name));
    }
    const form = (status: number, error: string): void =>
      sendPage(
        res,
        status,
        apiKeyFormPage({ provider: provider.id, displayName: provider.display_name, flowId, csrf, error }),
      );
    const apiKey = typeof body.api_key === 'string' ? body.api_key.trim() : '';
    if (!/^[\x21-\x7e]{1,4096}$/.test(apiKey))
      return form(400, 'Enter the API key: one line of printable characters, no spaces.');

    // Each check is a guess against the provider: counted in Redis before it is made, so no
    // burst or second process gets more than MAX_REFUSED_KEYS of them out of one link.
    const tryNumber = await deps.flows.takeKeyTry(flowId);
    const useUp = async (): Promise<void> => {
      await deps.flows.retire(flowId);
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'key_tries_used_up' });
      sendPage(res, 400, failurePage('key_tries_used_up', provider.display_name));
    };
    if (tryNumber > MAX_REFUSED_KEYS) return useUp();
    const verdict = await verifyApiKey(deps.http, provider, apiKey);
    if (verdict === 'refused') {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'key_refused' });
      if (tryNumber >= MAX_REFUSED_KEYS) return useUp();
      return form(400, `${provider.display_name} did not accept this key. Check it and try again.`);
    }
    if (verdict === 'unavailable') {
      await deps.flows.returnKeyTry(flowId);
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'provider_unavailable' });
      return form(
        502,
        `${provider.display_name} could not be reached to check the key. Please try again in a moment.`,
      );
    }
    // Single use across processes, like `state`: two submissions of one form store once.
    if (!(await takeFlow(req, deps.flows, flowId))?.fresh)
      return sendPage(res, 400, failurePage('invalid_form', provider.display_name));
    await deps.connections.storeApiKey(provider, flow.connection_id, apiKey, flowOwner(flow));
    deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'connected' });
    log.info({ provider: provider.id, connection_id: flow.connection_id }, 'api key connected');
    finishConnect(deps, req, res, provider, flow);
  };
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
