import type { Request } from 'express';
import { FlowStart, FlowStartResult, FlowState, FlowStore, isLinkToken } from '../connections/flow-store';
import { randomToken } from '../oauth/random-token';
import { FLOW_TTL_MS, SESSION_COOKIE } from './session';

/**
 * The connect flow's side of the browser session: a flow is kept in its own Redis key, bound to
 * the session's `binding`, and only the browser that started it finds it again (RFC 9700 §4.7:
 * CSRF). Every route of the journey reaches the session through these functions.
 */

/**
 * Uses up the connect link `token` and keeps the flow it starts in its own Redis key, bound to the
 * browser's session binding, and regenerates the session (session fixation: a planted session id
 * is worth nothing after it). A browser with no flow under way gets a fresh binding; one with flows
 * under way keeps its binding, so they stay its own. Starts that present the same cookie at the
 * same moment (two tabs opened together) each regenerate the session and the browser keeps one of
 * the new cookies: they settle on one binding through Redis, so every one of their flows still
 * matches whichever cookie the browser kept. A browser that sent no session cookie has a session
 * minted in this very request, whose id nobody else can know: it is not regenerated.
 *
 * Round trips (docs/architecture.md): the link's use and the flow are one script, and the session
 * writes go beside it (the old session's DEL, the new one's SET), so a start with no cookie costs
 * one round trip and a start with one three (the session's load, the binding's settling, then the
 * rest). A session saved beside a link that turns out unusable is dropped again.
 */
export async function startFlow(
  req: Request,
  flows: FlowStore,
  token: string,
  provider: string,
  start: FlowStart,
): Promise<FlowStartResult> {
  if (!isLinkToken(token)) return { ok: false, reason: 'unknown' };
  const now = Date.now();
  const underWay = req.session.binding !== undefined && (req.session.binding_until ?? 0) > now;
  const candidate = underWay ? req.session.binding! : randomToken(32);
  const presented = sessionCookieOf(req);
  if (presented === undefined) {
    bind(req, candidate, now);
    const [started] = await Promise.all([flows.start(token, provider, candidate, start), saveSession(req)]);
    if (!started.ok) await destroySession(req);
    return started;
  }
  const binding = await flows.settleBinding(presented, candidate);
  const replaced = req.sessionID;
  // What session.regenerate does, but the old session's DEL goes out beside the new one's SET.
  const store = req.sessionStore;
  store.generate(req);
  bind(req, binding, now);
  const [started] = await Promise.all([
    flows.start(token, provider, binding, start),
    new Promise<void>((resolve, reject) =>
      store.destroy(replaced, (e: unknown) => (e ? reject(e) : resolve())),
    ),
    saveSession(req),
  ]);
  skipSavingAgain(req);
  return started;
}

function bind(req: Request, binding: string, now: number): void {
  req.session.binding = binding;
  req.session.binding_until = now + FLOW_TTL_MS;
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

/**
 * This browser's flow, used up at once and its id marked used (single use across processes);
 * `fresh` is false when the id was marked used already. None without a session.
 */
export async function takeFlow(
  req: Request,
  flows: FlowStore,
  flowId: string,
): Promise<{ flow: FlowState; fresh: boolean } | undefined> {
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

function destroySession(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.destroy((e: unknown) => (e ? reject(e) : resolve())));
}

/**
 * express-session saves a session it did not create or load itself (one made by the store's
 * `generate`, as `regenerate` makes it) again when the response ends, one more round trip before
 * the last byte: saved already, and unchanged since, it is not written twice.
 */
function skipSavingAgain(req: Request): void {
  const session = req.session;
  const saved = withoutCookie(session);
  const save = session.save.bind(session);
  Object.defineProperty(session, 'save', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: (callback?: (err: unknown) => void) => {
      if (withoutCookie(session) !== saved) return save(callback);
      callback?.(undefined);
      return session;
    },
  });
}

/** The session's data as express-session compares it: without the cookie (its expiry moves). */
function withoutCookie(session: Request['session']): string {
  return JSON.stringify(session, function (this: unknown, key, value: unknown) {
    return this === session && key === 'cookie' ? undefined : value;
  });
}
