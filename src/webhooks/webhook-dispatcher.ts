import { createHmac, randomUUID } from 'node:crypto';
import { ConnectionEvent, ConnectionEvents } from '../connections/connection-events';
import { RedisClient } from '../connections/redis-client';
import { RedisKeys } from '../connections/redis-keys';
import { BrokerMetrics } from '../observability/metrics';
import { Logger, errorForLog } from '../observability/logger';
import { ProviderHttp } from '../oauth/provider-http';

/**
 * Every time below is Redis's own (TIME), never a process's clock: the queue's scores are shared
 * by every process, and one host's clock running ahead would otherwise see another's lease as
 * expired and send the same event at the same moment.
 */
const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Queues ARGV[2] under id ARGV[1], due at once. */
const ENQUEUE_SCRIPT = `${NOW_MS}
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
`;

/**
 * Takes ONE delivery due by now + ARGV[1] ms, leases it for ARGV[2] ms under the token ARGV[3]
 * (the fence: only its holder may settle it), and answers {id, payload}, or nil when none is due.
 * One at a time, just before its send, so a lease always covers the send it protects.
 */
const CLAIM_SCRIPT = `${NOW_MS}
local due = now + tonumber(ARGV[1])
for _ = 1, 10 do
  local id = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', due, 'LIMIT', 0, 1)[1]
  if not id then return false end
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), id)
    redis.call('HSET', KEYS[3], id, ARGV[3])
    return {id, payload}
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
end
return false
`;

/** Removes delivery ARGV[1] for good, if the lease is still ARGV[2]'s. */
const SETTLE_SCRIPT = `
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`;

/** Stores ARGV[3] for delivery ARGV[1] and makes it due in ARGV[4] ms, if the lease is still ARGV[2]'s. */
const RETRY_SCRIPT = `${NOW_MS}
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`;

type Script = (...args: string[]) => Promise<unknown>;

export interface WebhookSettings {
  url: string;
  secret: string;
  /** Give up after this many attempts (backoff doubles from 2 s, up to an hour). */
  maxAttempts?: number;
  pollMs?: number;
  /** The longest one send can take (the HTTP client's timeout, PROVIDER_TIMEOUT); default 10 s. */
  sendTimeoutMs?: number;
  /** Deliveries sent one after another in one round; default 20. */
  batch?: number;
}

interface QueuedEvent {
  id: string;
  type: string;
  provider: string;
  connection_id: string;
  reason?: string;
  occurred_at: string;
  attempts: number;
}

/**
 * Connection events to the operator's WEBHOOK_URL, signed with HMAC-SHA256 over the timestamp
 * and the body (`X-Broker-Signature: t=<unix seconds>,v1=<hex>`), so a receiver can refuse
 * replays outside its tolerance. Queued in Redis first: a restart loses none; retried with
 * backoff. Each delivery is leased on its own, just before its send, for longer than the send can
 * take, and settled only by the holder of that lease: two processes never send the same one at
 * once, and one sends it again only after a crash or a lost answer (at least once).
 */
export class WebhookDispatcher implements ConnectionEvents {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;
  /** Set by stop(): a round under way sends nothing more. */
  private halted = false;
  private readonly keys: [string, string, string];
  private readonly leaseMs: number;

  constructor(
    private readonly deps: {
      redis: RedisClient;
      keys: RedisKeys;
      http: ProviderHttp;
      logger: Logger;
      metrics: BrokerMetrics;
      settings: WebhookSettings;
    },
  ) {
    this.keys = [deps.keys.webhookQueue(), deps.keys.webhookPayloads(), deps.keys.webhookLeases()];
    // The send (bounded by its timeout), the round trips around it, and room for a stalled event
    // loop: a lease that ran out while its holder still sends would let a second copy go at once.
    this.leaseMs = 2 * (deps.settings.sendTimeoutMs ?? 10_000) + 5_000;
    deps.redis.defineCommand('obWebhookEnqueue', { numberOfKeys: 2, lua: ENQUEUE_SCRIPT });
    deps.redis.defineCommand('obWebhookClaim', { numberOfKeys: 3, lua: CLAIM_SCRIPT });
    deps.redis.defineCommand('obWebhookSettle', { numberOfKeys: 3, lua: SETTLE_SCRIPT });
    deps.redis.defineCommand('obWebhookRetry', { numberOfKeys: 3, lua: RETRY_SCRIPT });
  }

  emit(event: ConnectionEvent): void {
    const queued: QueuedEvent = {
      id: randomUUID(),
      ...event,
      occurred_at: new Date().toISOString(),
      attempts: 0,
    };
    void this.enqueue(queued, 0);
  }

  /**
   * The change the event reports is already made: a Redis that is away for a moment (a restart, a
   * failover) must not lose its event, so the write is tried again with backoff for about half a
   * minute. The id is fixed, so a write that did land and is written again stays one delivery.
   */
  private async enqueue(queued: QueuedEvent, attempt: number): Promise<void> {
    try {
      await this.script('obWebhookEnqueue')(this.keys[0], this.keys[1], queued.id, JSON.stringify(queued));
      this.kick();
    } catch (error) {
      if (attempt >= 7) {
        this.deps.logger.warn({ err: errorForLog(error), event: queued.type }, 'webhook not queued');
        return;
      }
      const retry = setTimeout(() => void this.enqueue(queued, attempt + 1), 250 * 2 ** attempt);
      retry.unref();
    }
  }

  start(): void {
    this.stopped = false;
    this.halted = false;
    this.schedule();
  }

  /** Starts no further send; waits for the one under way (bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halted = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /**
   * Delivers what is due, one lease at a time, up to a batch; answers how many were sent
   * successfully. `lookAheadMs` counts deliveries due that much later as due now (by Redis's clock).
   */
  async deliverDue(lookAheadMs = 0): Promise<number> {
    let delivered = 0;
    for (let i = 0; i < (this.deps.settings.batch ?? 20); i++) {
      if (this.halted) break;
      const lease = randomUUID();
      const claimed = (await this.script('obWebhookClaim')(
        ...this.keys,
        String(Math.round(lookAheadMs)),
        String(this.leaseMs),
        lease,
      )) as [string, string] | null;
      if (!claimed) break;
      if (await this.deliver(JSON.parse(claimed[1]) as QueuedEvent, lease)) delivered++;
    }
    return delivered;
  }

  private async deliver(event: QueuedEvent, lease: string): Promise<boolean> {
    const { id, attempts: _attempts, ...payload } = event;
    const body = JSON.stringify({ id, ...payload });
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', this.deps.settings.secret)
      .update(`${timestamp}.${body}`)
      .digest('hex');
    let ok = false;
    try {
      const response = await this.deps.http({
        method: 'POST',
        url: this.deps.settings.url,
        headers: {
          'Content-Type': 'application/json',
          'X-Broker-Event': event.type,
          'X-Broker-Delivery': id,
          'X-Broker-Signature': `t=${timestamp},v1=${signature}`,
        },
        body,
      });
      ok = response.status >= 200 && response.status < 300;
    } catch {
      ok = false;
    }
    this.deps.metrics.webhookDeliveries.inc({ event: event.type, outcome: ok ? 'delivered' : 'failed' });
    if (ok) {
      await this.settle(id, lease);
      return true;
    }
    const attempts = event.attempts + 1;
    if (attempts >= (this.deps.settings.maxAttempts ?? 12)) {
      this.deps.logger.warn(
        { event: event.type, delivery: id, attempts },
        'webhook dropped after repeated failures',
      );
      await this.settle(id, lease);
      return false;
    }
    const backoff = Math.min(2000 * 2 ** (attempts - 1), 3_600_000) * (0.8 + Math.random() * 0.4);
    const kept = await this.script('obWebhookRetry')(
      ...this.keys,
      id,
      lease,
      JSON.stringify({ ...event, attempts }),
      String(Math.round(backoff)),
    );
    if (kept !== 1) this.leaseLost(id);
    return false;
  }

  private async settle(id: string, lease: string): Promise<void> {
    if ((await this.script('obWebhookSettle')(...this.keys, id, lease)) !== 1) this.leaseLost(id);
  }

  /** Only after a stall longer than the lease: another process owns the delivery now. */
  private leaseLost(id: string): void {
    this.deps.logger.warn({ delivery: id }, 'webhook lease ran out before its send was settled');
  }

  private script(name: string): Script {
    const command = (this.deps.redis as unknown as Record<string, Script>)[name]!;
    return (...args) => command.apply(this.deps.redis, args);
  }

  private kick(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(delay = this.deps.settings.pollMs ?? 1000): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.deliverDue()
        .catch((error: unknown) => {
          this.deps.logger.debug({ err: errorForLog(error) }, 'webhook delivery round failed');
          return 0;
        })
        .then(() => {
          this.running = undefined;
          this.schedule();
        });
    }, delay);
    this.timer.unref();
  }
}
