import { EndUser, Tags } from './connection-owner';
import { hashToken } from './connect-session-store';
import { RedisClient } from './redis-client';
import { RedisKeys } from './redis-keys';

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
}

/** Seconds a just-replaced session cookie still joins new flows to its browser's binding. */
export const FORWARD_SECONDS = 5;

/**
 * The flow (oauth2 `state`, or form id), if it belongs to this binding; taken (deleted) only then,
 * so another browser's attempt leaves it for its own. Answers its JSON or nil.
 */
const TAKE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local ok, entry = pcall(cjson.decode, value)
if not ok or entry.binding ~= ARGV[1] then return nil end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return value
`;

/** The binding already settled for a presented cookie, else ARGV[1], settled now. */
const SETTLE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
`;

interface FlowScripts {
  obTakeFlow(key: string, binding: string, take: '0' | '1'): Promise<string | null>;
  obSettleBinding(key: string, candidate: string, ttl: number): Promise<string>;
}

/**
 * Browser flows, each in its own Redis key beside the express-session, bound to the session's
 * `binding` (a random secret the session carries from one flow start to the next). Flows started
 * at the same moment in one browser each regenerate the session and the browser keeps only one of
 * the new cookies; they share the binding, so every flow still matches (docs/configuration-hardening.md).
 * Keys hold hashes of flow ids and of the binding only. Also counts an API-key form's tries.
 */
export class FlowStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('obTakeFlow', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    redis.defineCommand('obSettleBinding', { numberOfKeys: 1, lua: SETTLE_SCRIPT });
  }

  private get scripts(): FlowScripts {
    return this.redis as unknown as FlowScripts;
  }

  async save(flowId: string, binding: string, flow: FlowState): Promise<void> {
    const entry = JSON.stringify({ binding: hashToken(binding), flow });
    await this.redis.set(this.keys.flow(hashToken(flowId)), entry, 'EX', this.ttlSeconds);
  }

  /** The flow if it is this binding's, left in place (an API-key form may be sent again). */
  peek(flowId: string, binding: string): Promise<FlowState | undefined> {
    return this.read(flowId, binding, '0');
  }

  /** The flow if it is this binding's, used up at once: only one caller ever gets it. */
  take(flowId: string, binding: string): Promise<FlowState | undefined> {
    return this.read(flowId, binding, '1');
  }

  async drop(flowId: string): Promise<void> {
    await this.redis.del(this.keys.flow(hashToken(flowId)));
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
    // The key exists with its TTL before it is counted: no counter outlives its flow.
    await this.redis.set(key, '0', 'EX', this.ttlSeconds, 'NX');
    return this.redis.incr(key);
  }

  /** Gives a try back: the key was not judged (the check failed), so it is no guess spent. */
  async returnKeyTry(flowId: string): Promise<void> {
    await this.redis.decr(this.keys.keyTries(hashToken(flowId)));
  }

  private async read(flowId: string, binding: string, take: '0' | '1'): Promise<FlowState | undefined> {
    if (flowId.length === 0 || flowId.length > 256) return undefined;
    const key = this.keys.flow(hashToken(flowId));
    const value = await this.scripts.obTakeFlow.call(this.redis, key, hashToken(binding), take);
    return value === null ? undefined : (JSON.parse(value) as { flow: FlowState }).flow;
  }
}
