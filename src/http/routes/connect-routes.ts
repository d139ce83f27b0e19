import express, { Request, Response, Router } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { ConnectSessionStore, UsedStateStore } from '../../connections/connect-session-store';
import { OwnerChange } from '../../connections/connection-owner';
import { ConnectionService } from '../../connections/connection-service';
import { FlowState, FlowStore } from '../../connections/flow-store';
import { BrokerMetrics } from '../../observability/metrics';
import { Logger } from '../../observability/logger';
import { buildAuthorizationUrl } from '../../oauth/build-authorization-url';
import { createCodeVerifier } from '../../oauth/pkce';
import { ProviderHttp } from '../../oauth/provider-http';
import { randomToken } from '../../oauth/random-token';
import { TokenEndpointDeps, requestToken, toTokenEndpointError } from '../../oauth/request-token';
import { Provider } from '../../providers/provider-definition';
import { ProviderRegistry } from '../../providers/provider-registry';
import { apiKeyFormPage, connectedPage, failurePage } from '../pages/connect-pages';
import { renderPage, escapeHtml } from '../pages/render-page';
import { sendPage } from '../pages/send-page';
import { withQuery } from '../return-to';
import { FLOW_TTL_MS, SESSION_COOKIE } from '../session';
import { verifyApiKey } from './verify-api-key';

export interface ConnectRoutesDeps {
  registry: ProviderRegistry;
  connectSessions: ConnectSessionStore;
  usedStates: UsedStateStore;
  flows: FlowStore;
  connections: ConnectionService;
  tokenEndpoint: TokenEndpointDeps;
  http: ProviderHttp;
  logger: Logger;
  metrics: BrokerMetrics;
}

/** Refused keys one API-key form may send before it is used up (guessing against verify_url). */
export const MAX_REFUSED_KEYS = 5;

type CallbackError =
  'access_denied' | 'invalid_issuer' | 'provider_error' | 'token_exchange_failed' | 'provider_unavailable';

/**
 * The browser's side of a connection: `GET /auth/:provider` (a connect link), `POST
 * /auth/:provider` (the API-key form) and `GET /callback/:provider` (the provider's answer).
 * One router for every provider: they differ only by their definitions.
 */
export function createConnectRoutes(deps: ConnectRoutesDeps): Router {
  const router = Router();
  const log = deps.logger;

  router.get('/auth/:provider', async (req, res) => {
    const provider = pageProvider(deps.registry, req, res);
    if (!provider) return;
    const token = req.query.session;
    if (typeof token !== 'string' || token === '')
      return sendPage(res, 400, failurePage('missing_session', provider.display_name));
    const consumed = await deps.connectSessions.consume(token, provider.id);
    if (!consumed.ok) {
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: consumed.reason });
      const page = consumed.reason === 'wrong_provider' ? 'wrong_provider' : 'invalid_session';
      return sendPage(res, 400, failurePage(page, provider.display_name));
    }
    const { session } = consumed;
    const flowId = randomToken(32);
    const flow: FlowState = {
      provider: provider.id,
      connection_id: session.connection_id,
      return_to: session.return_to,
      scopes: session.scopes ?? provider.scopes,
      created_at: Date.now(),
    };
    if (session.end_user !== undefined) flow.end_user = session.end_user;
    if (session.tags !== undefined) flow.tags = session.tags;
    if (provider.auth_mode === 'oauth2') flow.code_verifier = createCodeVerifier();
    else flow.csrf = randomToken(32);
    await startFlow(req, deps.flows, flowId, flow);
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
  });

  router.post(
    '/auth/:provider',
    express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }),
    async (req, res) => {
      const provider = pageProvider(deps.registry, req, res);
      if (!provider) return;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const flowId = typeof body.flow === 'string' ? body.flow : '';
      const csrf = typeof body.csrf === 'string' ? body.csrf : '';
      const binding = req.session.binding;
      const flow = flowId && binding ? await deps.flows.peek(flowId, binding) : undefined;
      if (
        provider.auth_mode !== 'api_key' ||
        !flow ||
        flow.provider !== provider.id ||
        !flow.csrf ||
        !constantTimeEqual(flow.csrf, csrf) ||
        Date.now() - flow.created_at > FLOW_TTL_MS
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
        await deps.flows.drop(flowId);
        await deps.usedStates.claim(flowId);
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
      if (!(await deps.flows.take(flowId, binding!)) || !(await deps.usedStates.claim(flowId)))
        return sendPage(res, 400, failurePage('invalid_form', provider.display_name));
      await deps.connections.saveApiKey(provider, flow.connection_id, apiKey, flowOwner(flow));
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'connected' });
      log.info({ provider: provider.id, connection_id: flow.connection_id }, 'api key connected');
      succeed(res, provider, flow);
    },
  );

  router.get('/callback/:provider', async (req, res) => {
    const provider = pageProvider(deps.registry, req, res);
    if (!provider) return;
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const binding = req.session.binding;
    // Taken at once: `state` is single use, whatever happens next (RFC 9700 §4.7.1).
    const flow = state && binding ? await deps.flows.take(state, binding) : undefined;
    // Without a flow of this browser and this provider there is no trusted return_to, and no
    // token request is made (RFC 9700 §4.7: CSRF; §4.4: mix-up via another provider's state).
    if (
      !flow ||
      flow.provider !== provider.id ||
      flow.code_verifier === undefined ||
      Date.now() - flow.created_at > FLOW_TTL_MS
    ) {
      // A flow of this browser seen at the wrong callback, or too late, is used up all the same:
      // `state` is single use, and after a mix-up its code may be in other hands (RFC 9700 §4.4).
      if (flow) await deps.usedStates.claim(state);
      deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'unknown_flow' });
      log.info({ provider: provider.id, has_session: Boolean(binding) }, 'callback matched no flow');
      return sendPage(res, 400, failurePage('unknown_flow', provider.display_name));
    }
    if (!(await deps.usedStates.claim(state))) {
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
    await deps.connections.saveTokens(provider, flow.connection_id, tokens, flow.scopes, flowOwner(flow));
    deps.metrics.connectAttempts.inc({ provider: provider.id, outcome: 'connected' });
    log.info({ provider: provider.id, connection_id: flow.connection_id }, 'connected');
    succeed(res, provider, flow);
  });

  return router;
}

/** What the flow's connect session named of the owner; what it left out is kept. */
function flowOwner(flow: FlowState): OwnerChange {
  return { end_user: flow.end_user, tags: flow.tags };
}

function succeed(res: Response, provider: Provider, flow: FlowState): void {
  if (flow.return_to) {
    return void res.redirect(
      303,
      withQuery(flow.return_to, { connected: provider.id, connection_id: flow.connection_id }),
    );
  }
  sendPage(res, 200, connectedPage(provider.display_name, flow.connection_id));
}

/** The provider of a browser route, or a 404 page that says which problem it is. */
function pageProvider(registry: ProviderRegistry, req: Request, res: Response): Provider | undefined {
  const id = String(req.params.provider);
  const provider = registry.get(id);
  if (!provider) {
    sendPage(
      res,
      404,
      renderPage({
        title: 'Unknown service',
        tone: 'err',
        badge: 'Not found',
        body: `<p>There is no provider "${escapeHtml(id.slice(0, 64))}" here. Check the link the app gave you.</p>`,
      }),
    );
    return undefined;
  }
  if (!provider.enabled) {
    sendPage(
      res,
      404,
      renderPage({
        title: `${provider.display_name} is not set up`,
        tone: 'err',
        badge: 'Not enabled',
        body: `<p>Connecting ${escapeHtml(provider.display_name)} is not enabled on this server. An operator enables it by setting <code>${provider.env_prefix}_CLIENT_ID</code> and <code>${provider.env_prefix}_CLIENT_SECRET</code>.</p><p class="hint">Go back to the app and let its support team know, or try again later.</p>`,
      }),
    );
    return undefined;
  }
  return provider;
}

/**
 * Keeps the flow in its own Redis key, bound to the browser's session binding, and regenerates the
 * session (session fixation: a planted session id is worth nothing after it). A browser with no
 * flow under way gets a fresh binding; one with flows under way keeps its binding, so they stay
 * its own. Starts that present the same cookie at the same moment (two tabs opened together) each
 * regenerate the session and the browser keeps one of the new cookies: they settle on one binding
 * through Redis, so every one of their flows still matches whichever cookie the browser kept. A
 * browser that sent no session cookie has a session minted in this very request, whose id nobody
 * else can know: regenerating it would only cost a DEL and a second SET.
 */
async function startFlow(req: Request, flows: FlowStore, flowId: string, flow: FlowState): Promise<void> {
  const now = Date.now();
  const underWay = req.session.binding !== undefined && (req.session.binding_until ?? 0) > now;
  const candidate = underWay ? req.session.binding! : randomToken(32);
  const presented = sessionCookieOf(req);
  const binding = presented === undefined ? candidate : await flows.settleBinding(presented, candidate);
  if (presented !== undefined) {
    await new Promise<void>((resolve, reject) =>
      req.session.regenerate((e: unknown) => (e ? reject(e) : resolve())),
    );
  }
  await flows.save(flowId, binding, flow);
  req.session.binding = binding;
  req.session.binding_until = now + FLOW_TTL_MS;
  await saveSession(req);
}

const SESSION_COOKIE_VALUE = new RegExp(`(?:^|;)\\s*${SESSION_COOKIE.replace(/\./g, '\\.')}=([^;]*)`);

/** The session cookie as the browser sent it (signed), if it sent one. */
function sessionCookieOf(req: Request): string | undefined {
  const header = req.headers.cookie;
  const value = typeof header === 'string' ? SESSION_COOKIE_VALUE.exec(header)?.[1]?.trim() : undefined;
  return value ? value : undefined;
}

function saveSession(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((e: unknown) => (e ? reject(e) : resolve())));
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
