import type { Request } from 'express';
import { FlowState, FlowStore } from '../connections/flow-store';
import { randomToken } from '../oauth/random-token';
import { FLOW_TTL_MS, SESSION_COOKIE } from './session';

/**
 * The connect flow's side of the browser session: a flow is kept in its own Redis key, bound to
 * the session's `binding`, and only the browser that started it finds it again (RFC 9700 §4.7:
 * CSRF). Every route of the journey reaches the session through these functions.
 */

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
export async function startFlow(
  req: Request,
  flows: FlowStore,
  flowId: string,
  flow: FlowState,
): Promise<void> {
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

/** This browser's flow, left in place (an API-key form may be sent again); none without a session. */
export async function peekFlow(
  req: Request,
  flows: FlowStore,
  flowId: string,
): Promise<FlowState | undefined> {
  const binding = req.session.binding;
  return flowId && binding ? flows.peek(flowId, binding) : undefined;
}

/** This browser's flow, used up at once (single use across processes); none without a session. */
export async function takeFlow(
  req: Request,
  flows: FlowStore,
  flowId: string,
): Promise<FlowState | undefined> {
  const binding = req.session.binding;
  return flowId && binding ? flows.take(flowId, binding) : undefined;
}

/** Whether the browser brought a session that has started a flow (for the log only). */
export function hasFlowSession(req: Request): boolean {
  return Boolean(req.session.binding);
}

/** A flow older than its `state` may live is refused, whatever Redis still holds. */
export function isFlowExpired(flow: FlowState): boolean {
  return Date.now() - flow.created_at > FLOW_TTL_MS;
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
