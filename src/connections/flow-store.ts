import { ConnectSession, hashToken } from './connect-session-store';
import { EndUser, Tags } from './connection-owner';
import { RedisClient } from './redis-client';
import { RedisKeys, flowGroupOf } from './redis-keys';
import { randomToken } from '../oauth/random-token';

/** What one browser flow needs at its callback (or its API-key form's submission). */
export interface FlowState {
  provider: string;
  connection_id: string;
  return_to?: string;
  scopes: string[];
  /** Owner fields named by the connect session, stored when the flow completes. */
  end_user?: EndUser | null;
  tags?: Tags;
  /** PKCE verifier (oauth2 flows). */
  code_verifier?: string;
  /** Anti-CSRF token of the API-key form (api_key flows). */
  csrf?: string;
  created_at: number;
  /** Who asked for the connect link: the audit log's actor of the connect. */
  actor?: string;
}

/** What a flow start adds to its connect session: the secret of its mode, when, the default scopes. */
export interface FlowStart {
  created_at: number;
  code_verifier?: string;
  csrf?: string;
  /** The provider's scopes, for a connect session that named none. */
  scopes: string[];
}

export type FlowStartResult =
  { ok: true; flowId: string; flow: FlowState } | { ok: false; reason: 'unknown' | 'wrong_provider' };

/** Seconds a just-replaced session cookie still joins new flows to its browser's binding. */
export const FORWARD_SECONDS = 5;

/**
 * Uses up a connect link (KEYS[1]), but only under the link's own provider (ARGV[1]): a link
 * opened under another provider's path stays unused. Leaves the link's JSON in `value`; answers
 * 'wrong_provider' or nil when it is not used up.
 */
const USE_LINK_LUA = `
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local ok, session = pcall(cjson.decode, value)
if not ok or session.provider ~= ARGV[1] then return 'wrong_provider' end
redis.call('DEL', KEYS[1])
`;

/**
 * USE_LINK_LUA, and keeps the flow the link starts (KEYS[2]) in the same script: ARGV[2] (its
 * start, up to the session) .. the link's JSON .. '}', for ARGV[3] seconds. Answers the link's
 * JSON, 'wrong_provider', or nil.
 */
const START_SCRIPT = `${USE_LINK_LUA}
redis.call('SET', KEYS[2], ARGV[2] .. value .. '}', 'EX', ARGV[3])
return value
`;

/** USE_LINK_LUA alone, for a link stored without a group (see startFromUntaggedLink). */
const USE_UNTAGGED_LINK_SCRIPT = `${USE_LINK_LUA}
return value
`;

/**
 * The flow (KEYS[1]: oauth2 `state`, or form id), if it belongs to this binding (ARGV[1]); with
 * ARGV[2] = '1' taken (deleted) only then, so another browser's attempt leaves it for its own,
 * and its id marked used (KEYS[2], SET NX for ARGV[3] seconds). Answers nil or { JSON, whether
 * this call marked it used }.
 */
const TAKE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local ok, entry = pcall(cjson.decode, value)
if not ok or entry.binding ~= ARGV[1] then return nil end
if ARGV[2] ~= '1' then return {value, 0} end
redis.call('DEL', KEYS[1])
local marked = redis.call('SET', KEYS[2], '1', 'EX', ARGV[3], 'NX')
return {value, marked and 1 or 0}
`;

/** The binding already settled for a presented cookie, else ARGV[1], settled now. */
const SETTLE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
`;

interface FlowScripts {
  obStartFlow(
    linkKey: string,
    flowKey: string,
    provider: string,
    head: string,
    ttl: number,
  ): Promise<string | null>;
  obUseUntaggedLink(linkKey: string, provider: string): Promise<string | null>;
  obTakeFlow(
    flowKey: string,
    usedKey: string,
    binding: string,
    take: '0' | '1',
    usedTtl: number,
  ): Promise<[string, number] | null>;
  obSettleBinding(key: string, candidate: string, ttl: number): Promise<string>;
}

/** A flow as kept: the binding's hash, what its start added, the connect session it used up. */
interface FlowEntry {
  binding: string;
  start: FlowStart;
  session: ConnectSession;
}

/**
 * Browser flows, each in its own Redis key beside the express-session, bound to the session's
 * `binding` (a random secret the session carries from one flow start to the next). Flows started
 * at the same moment in one browser each regenerate the session and the browser keeps only one of
 * the new cookies; they share the binding, so every flow still matches (docs/configuration-hardening.md).
 * Keys hold hashes of flow ids and of the binding only. Also counts an API-key form's tries.
 *
 * A flow id (the oauth2 `state`, or the form id) is `<group>_<random>` (base64url): its keys carry the group,
 * the hash tag of the connect link that started it, so using up the link and keeping the flow is
 * one script, and so is taking the flow and marking its id used (one round trip each, on a
 * Cluster too; docs/architecture.md).
 */
export class FlowStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
    /** How long a used `state` or form id stays refused (longer than any flow lives). */
    private readonly usedTtlSeconds: number,
  ) {
    redis.defineCommand('obStartFlow', { numberOfKeys: 2, lua: START_SCRIPT });
    redis.defineCommand('obUseUntaggedLink', { numberOfKeys: 1, lua: USE_UNTAGGED_LINK_SCRIPT });
    redis.defineCommand('obTakeFlow', { numberOfKeys: 2, lua: TAKE_SCRIPT });
    redis.defineCommand('obSettleBinding', { numberOfKeys: 1, lua: SETTLE_SCRIPT });
  }

  private get scripts(): FlowScripts {
    return this.redis as unknown as FlowScripts;
  }

  /**
   * Uses up the connect link `token`, but only under its own `provider`, and keeps the flow it
   * starts, bound to `binding`, in the same script: a link is used up exactly when its flow exists.
   */
  async start(token: string, provider: string, binding: string, start: FlowStart): Promise<FlowStartResult> {
    if (!isLinkToken(token)) return { ok: false, reason: 'unknown' };
    const tokenHash = hashToken(token);
    const group = flowGroupOf(tokenHash);
    const flowId = `${group}_${randomToken(32)}`;
    // The entry's JSON up to the session, which the script appends as the link holds it.
    const head = `${JSON.stringify({ binding: hashToken(binding), start }).slice(0, -1)},"session":`;
    const value = await this.scripts.obStartFlow.call(
      this.redis,
      this.keys.connectSession(tokenHash),
      this.keys.flow(group, hashToken(flowId)),
      provider,
      head,
      this.ttlSeconds,
    );
    if (value === null) return this.startFromUntaggedLink(tokenHash, provider, flowId, head, start);
    if (value === 'wrong_provider') return { ok: false, reason: 'wrong_provider' };
    return { ok: true, flowId, flow: flowOf(start, JSON.parse(value) as ConnectSession) };
  }

  /**
   * A link stored under its key without a group, as builds before the groups named it (links live
   * up to CONNECT_SESSION_TTL, a day at most, across an upgrade): used up, then its flow kept, in
   * two round trips since the two keys may sit in different Cluster slots.
   */
  private async startFromUntaggedLink(
    tokenHash: string,
    provider: string,
    flowId: string,
    head: string,
    start: FlowStart,
  ): Promise<FlowStartResult> {
    const value = await this.scripts.obUseUntaggedLink.call(
      this.redis,
      this.keys.untaggedConnectSession(tokenHash),
      provider,
    );
    if (value === null) return { ok: false, reason: 'unknown' };
    if (value === 'wrong_provider') return { ok: false, reason: 'wrong_provider' };
    const { flowKey } = this.keysOf(flowId);
    await this.redis.set(flowKey, `${head}${value}}`, 'EX', this.ttlSeconds);
    return { ok: true, flowId, flow: flowOf(start, JSON.parse(value) as ConnectSession) };
  }

  /** The flow if it is this binding's, left in place (an API-key form may be sent again). */
  async peek(flowId: string, binding: string): Promise<FlowState | undefined> {
    return (await this.read(flowId, binding, '0'))?.flow;
  }

  /**
   * The flow if it is this binding's, used up at once (only one caller ever gets it), its id
   * marked used in the same script; `fresh` is false when the id was marked used already.
   */
  take(flowId: string, binding: string): Promise<{ flow: FlowState; fresh: boolean } | undefined> {
    return this.read(flowId, binding, '1');
  }

  /** Drops a flow and marks its id used, whoever's it is (an API-key form whose tries ran out). */
  async retire(flowId: string): Promise<void> {
    const { flowKey, usedKey } = this.keysOf(flowId);
    await Promise.all([
      this.redis.del(flowKey),
      this.redis.set(usedKey, '1', 'EX', this.usedTtlSeconds, 'NX'),
    ]);
  }

  /**
   * The binding a flow start with this (signed) session cookie uses: the first start to present the
   * cookie settles it, and every start presenting the same cookie in the next FORWARD_SECONDS gets
   * the same, even after the first has replaced the session the cookie named.
   */
  settleBinding(presentedCookie: string, candidate: string): Promise<string> {
    const key = this.keys.flowBindingForward(hashToken(presentedCookie));
    return this.scripts.obSettleBinding.call(this.redis, key, candidate, FORWARD_SECONDS);
  }

  /**
   * Takes one try of a flow's API-key form and answers its number (1 for the first). Atomic
   * across processes, so a burst of submissions cannot all pass a check made before any counts.
   */
  async takeKeyTry(flowId: string): Promise<number> {
    const key = this.keys.keyTries(hashToken(flowId));
    // The key exists with its TTL before it is counted (no counter outlives its flow); both go in
    // one round trip, and Redis runs them in the order sent.
    const [, tries] = await Promise.all([
      this.redis.set(key, '0', 'EX', this.ttlSeconds, 'NX'),
      this.redis.incr(key),
    ]);
    return tries;
  }

  /** Gives a try back: the key was not judged (the check failed), so it is no guess spent. */
  async returnKeyTry(flowId: string): Promise<void> {
    await this.redis.decr(this.keys.keyTries(hashToken(flowId)));
  }

  private keysOf(flowId: string): { flowKey: string; usedKey: string } {
    const flowHash = hashToken(flowId);
    // Any other id (forged, or of an older build) still names keys, in a group of its own.
    const group = /^([0-9a-f]{16})_/.exec(flowId)?.[1] ?? flowGroupOf(flowHash);
    return { flowKey: this.keys.flow(group, flowHash), usedKey: this.keys.usedState(group, flowHash) };
  }

  private async read(
    flowId: string,
    binding: string,
    take: '0' | '1',
  ): Promise<{ flow: FlowState; fresh: boolean } | undefined> {
    if (flowId.length === 0 || flowId.length > 256) return undefined;
    const { flowKey, usedKey } = this.keysOf(flowId);
    const found = await this.scripts.obTakeFlow.call(
      this.redis,
      flowKey,
      usedKey,
      hashToken(binding),
      take,
      this.usedTtlSeconds,
    );
    if (found === null) return undefined;
    const entry = JSON.parse(found[0]) as FlowEntry;
    return { flow: flowOf(entry.start, entry.session), fresh: found[1] === 1 };
  }
}

/** Whether `token` has the shape of a connect link's token (others are not looked up). */
export function isLinkToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{20,100}$/.test(token);
}

/** The flow a start made of its connect session: the session's scopes, else the provider's. */
function flowOf(start: FlowStart, session: ConnectSession): FlowState {
  const flow: FlowState = {
    provider: session.provider,
    connection_id: session.connection_id,
    return_to: session.return_to,
    scopes: session.scopes ?? start.scopes,
    created_at: start.created_at,
    actor: session.actor,
  };
  if (session.end_user !== undefined) flow.end_user = session.end_user;
  if (session.tags !== undefined) flow.tags = session.tags;
  if (start.code_verifier !== undefined) flow.code_verifier = start.code_verifier;
  if (start.csrf !== undefined) flow.csrf = start.csrf;
  return flow;
}
