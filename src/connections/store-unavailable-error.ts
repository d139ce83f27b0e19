import { ReplyError } from 'ioredis';

/**
 * Redis could not serve a command: unreachable, closed, timed out, or moving (a failover or a slot
 * migration). The one type the rest of the broker knows for "the store is away, try again
 * shortly"; the HTTP layer answers it `503 store_unavailable` with `Retry-After`. The ioredis
 * error it stands for is its `cause`, for the log.
 */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    // ioredis' words carry no secret (no command arguments), and tell an operator what happened.
    super(`the store (Redis) is unavailable: ${cause instanceof Error ? cause.message : 'unknown failure'}`, {
      cause,
    });
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Redis error codes (the first word of an error reply, RESP §Simple errors) that mean "not here,
 * not now" rather than "this command is wrong": Cluster redirections and outages (MOVED, ASK,
 * TRYAGAIN, CLUSTERDOWN), a server loading or demoted (LOADING, READONLY, MASTERDOWN,
 * NOREPLICAS), busy with a script (BUSY), out of memory or unable to persist (OOM, MISCONF), or
 * refusing our credentials (NOAUTH, WRONGPASS). The same code may come back wrapped in a script
 * error (`-CODE` after the script's location).
 */
const UNAVAILABLE_REPLY =
  /(?:^|[\s:-])(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|MASTERDOWN|NOREPLICAS|BUSY|OOM|MISCONF|NOAUTH|WRONGPASS)\b/;

/**
 * Classifies what a Redis command was rejected with. A reply error is the server's answer to the
 * command: unavailable only for the codes above (WRONGTYPE, a script's own error and the like are
 * bugs, left as they are). Anything else that rejects a command (connection closed, command timed
 * out, MaxRetriesPerRequestError, ClusterAllFailedError, "Too many Cluster redirections",
 * "Cluster isn't ready", an aborted connection) is the transport failing, so the store is away.
 */
export function isUnavailableFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StoreUnavailableError) return true;
  if (error instanceof ReplyError) return UNAVAILABLE_REPLY.test(error.message.split('\n', 1)[0]!);
  // Programming errors thrown on the way in are not outages.
  return !(error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError);
}

/** `error` as the broker should see it: a StoreUnavailableError when Redis is away, else itself. */
export function classifyStoreFailure(error: unknown): unknown {
  if (error instanceof StoreUnavailableError || !isUnavailableFailure(error)) return error;
  return new StoreUnavailableError(error);
}
