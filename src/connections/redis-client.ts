import Redis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { isIP } from 'node:net';
import { RedisConfig } from '../config/config';
import { classifyStoreFailure } from './store-unavailable-error';

export type RedisClient = Redis | Cluster;

/**
 * The one place that knows Redis topologies. Requests must fail fast while Redis is away (no
 * offline queue, one retry, a command timeout), and the client must come back by itself within
 * about a second of Redis answering again.
 */
export function createRedisClient(config: RedisConfig, overrides: Partial<RedisOptions> = {}): RedisClient {
  const url = new URL(config.url);
  const auth: RedisOptions = {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    // SNI carries host names only (RFC 6066 §3): for an IP address the certificate is checked
    // against the address itself, and naming it as servername only earns a warning (DEP0123).
    tls: url.protocol === 'rediss:' ? (isIP(hostOf(url)) ? {} : { servername: hostOf(url) }) : undefined,
  };
  const resilient: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    // Reconnect quickly and keep trying forever: the guarantee is resuming within 3 s.
    retryStrategy: (times: number) => Math.min(100 * times, 500),
    lazyConnect: false,
    ...overrides,
  };

  if (config.clusterNodes && config.clusterNodes.length > 0) {
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      enableReadyCheck: true,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 500),
      slotsRefreshTimeout: 2000,
      redisOptions: { ...resilient, ...auth, tls: undefined, ...(auth.tls ? { tls: {} } : {}) },
      dnsLookup: (address, callback) => callback(null, address),
    };
    return guardStoreFailures(new Cluster(config.clusterNodes, options));
  }
  if (config.sentinels && config.sentinels.length > 0) {
    const client = new Redis({
      ...resilient,
      ...auth,
      sentinels: config.sentinels,
      name: config.sentinelName,
      enableTLSForSentinelMode: Boolean(auth.tls),
      // Reconnect as soon as a sentinel announces a new master, not when the old one times out.
      failoverDetector: true,
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 500),
      sentinelCommandTimeout: 1000,
      // Still connected to a master that was demoted (a missed +switch-master): writes answer
      // READONLY. Reconnecting asks the sentinels again and finds the new master.
      reconnectOnError: (error: Error) => /^READONLY/.test(error.message),
    });
    reconnectAfterAbortedConnect(client);
    return coalesceWrites(guardStoreFailures(client));
  }
  return coalesceWrites(
    guardStoreFailures(
      new Redis({
        ...resilient,
        ...auth,
        host: hostOf(url) || '127.0.0.1',
        port: url.port ? Number(url.port) : 6379,
        db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) || 0 : 0,
      }),
    ),
  );
}

const FLUSH_WRITES = Symbol('flush coalesced writes');
/** The socket and the commands awaiting their replies (ioredis keeps them in `commandQueue`). */
type InFlight = { stream?: Redis['stream']; commandQueue?: { length: number } };
type Coalescing = { [FLUSH_WRITES]?: () => void };

/**
 * Under load, the commands of one turn of the event loop leave in one socket write. ioredis writes
 * every command as soon as it is sent, and on loopback a write is the costliest step of a request
 * (the kernel's TCP path runs in the writing process): under load, the token API spent more CPU
 * writing its one script call than on all of its own work (bench/profile-token.mjs). Like Nagle's
 * algorithm (RFC 896), but bounded by the turn instead of a round trip: a command sent while none
 * awaits its reply goes out at once (an idle broker's requests wait for nothing); one sent while
 * others are in flight corks the socket until the turn's end (setImmediate: after the poll phase
 * that parsed this turn's requests and replies), so the turn's commands go out as one writev, in
 * order. Nothing else changes: the same commands, the same replies, the same timeouts. A
 * Cluster's commands go out on its nodes' sockets, left as they are.
 */
export function coalesceWrites<T extends RedisClient>(client: T): T {
  if (client instanceof Cluster) return client;
  const target = client as unknown as { sendCommand: (...args: unknown[]) => unknown } & Coalescing;
  const send = target.sendCommand.bind(client);
  let corked: Redis['stream'] | undefined;
  const uncork = (): void => {
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  };
  target.sendCommand = (...args) => {
    const { stream, commandQueue } = client as unknown as InFlight;
    if (
      corked === undefined &&
      stream !== undefined &&
      client.status === 'ready' &&
      commandQueue !== undefined &&
      commandQueue.length > 0
    ) {
      stream.cork();
      corked = stream;
      setImmediate(uncork);
    }
    return send(...args);
  };
  target[FLUSH_WRITES] = uncork;
  return client;
}

/**
 * Sends what `coalesceWrites` holds now, for a sender that is itself the end of a turn (a
 * setImmediate callback, such as the audit log's batch): a cork taken there would otherwise be
 * released only at the next turn's end.
 */
export function flushWrites(client: RedisClient): void {
  (client as Coalescing)[FLUSH_WRITES]?.();
}

interface GuardedCommand {
  reject: (error: unknown) => void;
}

/**
 * The store boundary: every command the broker sends (plain calls, scripts, express-session's
 * store) goes through the client's `sendCommand`, and a command that Redis could not serve is
 * rejected with a `StoreUnavailableError` instead of whatever words ioredis used. The final
 * rejection is wrapped, after ioredis' own handling: a Cluster client still follows MOVED/ASK and
 * retries TRYAGAIN/CLUSTERDOWN itself, and only what it gives up on is classified.
 */
export function guardStoreFailures<T extends RedisClient>(client: T): T {
  const guarded = new WeakSet<object>();
  const target = client as unknown as {
    sendCommand: (command: GuardedCommand, ...rest: unknown[]) => unknown;
  };
  const send = target.sendCommand.bind(client);
  target.sendCommand = (command, ...rest) => {
    // A pipeline's commands (sent with a stream or a node) report to the pipeline, which reads
    // redirections off their errors itself: leave those alone (the broker sends none).
    if (rest.length === 0 || rest.every((r) => r === undefined)) {
      if (!guarded.has(command)) {
        guarded.add(command);
        const reject = command.reject;
        command.reject = (error: unknown) => reject.call(command, classifyStoreFailure(error));
      }
    }
    return send(command, ...rest);
  };
  return client;
}

/** What `reconnectAfterAbortedConnect` needs of a client (an ioredis `Redis`). */
export interface ReconnectableClient {
  readonly status: string;
  on(event: string, listener: () => void): unknown;
  emit(event: string): boolean;
  connect(): Promise<void>;
}

/** Emitted on the client when it is revived this way (main.ts logs it). */
export const REVIVED_EVENT = 'ob:revived';

/**
 * ioredis 5 ends a Sentinel client for good when its failover detector disconnects it while it is
 * still connecting (a sentinel answered +switch-master during the connector's retry loop): the
 * connector's promise rejects and `connect` sets the status to "end" instead of retrying, and the
 * broker would answer 503 until restarted. An end that comes straight from a connection attempt
 * (`connecting`/`connect` → `end`, no `close` in between) and that nobody asked for (no
 * `disconnect()` or `quit()`, which set ioredis' `manuallyClosing`) is turned back into a
 * reconnect, after the same short delay as the retry strategy's first.
 */
export function reconnectAfterAbortedConnect(client: ReconnectableClient, delayMs = 100): void {
  const askedToClose = (): boolean =>
    Boolean((client as unknown as { manuallyClosing?: boolean }).manuallyClosing);
  let previous = client.status;
  for (const status of ['connecting', 'connect', 'ready', 'close', 'reconnecting'])
    client.on(status, () => (previous = status));
  client.on('end', () => {
    const fromAttempt = previous === 'connecting' || previous === 'connect';
    previous = 'end';
    if (!fromAttempt || askedToClose()) return;
    setTimeout(() => {
      if (client.status !== 'end' || askedToClose()) return;
      client.emit(REVIVED_EVENT);
      client.connect().catch(() => undefined);
    }, delayMs).unref();
  });
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Resolves when the client is ready, or after `timeoutMs` (the broker starts either way). */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onReady = (): void => finish(true);
    function finish(ready: boolean): void {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    }
    client.on('ready', onReady);
  });
}
