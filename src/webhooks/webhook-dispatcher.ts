import { createHmac, randomUUID } from 'node:crypto';
import { ConnectionEvent, ConnectionEvents } from '../connections/connection-events';
import { RedisClient } from '../connections/redis-client';
import { RedisKeys } from '../connections/redis-keys';
import { BrokerMetrics } from '../observability/metrics';
import { Logger, errorForLog } from '../observability/logger';
import { ProviderHttp } from '../oauth/provider-http';

/** Takes up to ARGV[2] due deliveries, leasing each until ARGV[3] so a crash only delays it. */
const CLAIM_SCRIPT = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id)
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then out[#out + 1] = id; out[#out + 1] = payload else redis.call('ZREM', KEYS[1], id) end
end
return out
`;

export interface WebhookSettings {
  url: string;
  secret: string;
  /** Give up after this many attempts (backoff doubles from 2 s, up to an hour). */
  maxAttempts?: number;
  pollMs?: number;
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
 * backoff; each delivery leased so two processes never send the same one at once.
 */
export class WebhookDispatcher implements ConnectionEvents {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;
  private readonly queueKey: string;
  private readonly payloadKey: string;

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
    this.queueKey = deps.keys.webhookQueue();
    this.payloadKey = deps.keys.webhookPayloads();
    deps.redis.defineCommand('obClaimWebhooks', { numberOfKeys: 2, lua: CLAIM_SCRIPT });
  }

  emit(event: ConnectionEvent): void {
    const queued: QueuedEvent = {
      id: randomUUID(),
      ...event,
      occurred_at: new Date().toISOString(),
      attempts: 0,
    };
    void this.enqueue(queued, Date.now())
      .then(() => this.kick())
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: errorForLog(error), event: event.type }, 'webhook not queued'),
      );
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Delivers what is due now; answers how many were sent successfully. */
  async deliverDue(now = Date.now()): Promise<number> {
    const claim = (
      this.deps.redis as unknown as {
        obClaimWebhooks(q: string, p: string, ...a: string[]): Promise<string[]>;
      }
    ).obClaimWebhooks;
    const flat = await claim.call(
      this.deps.redis,
      this.queueKey,
      this.payloadKey,
      String(now),
      '20',
      String(now + 30_000),
    );
    let delivered = 0;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const event = JSON.parse(flat[i + 1]!) as QueuedEvent;
      if (await this.deliver(event)) delivered++;
    }
    return delivered;
  }

  private async deliver(event: QueuedEvent): Promise<boolean> {
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
      await this.deps.redis.zrem(this.queueKey, id);
      await this.deps.redis.hdel(this.payloadKey, id);
      return true;
    }
    const attempts = event.attempts + 1;
    if (attempts >= (this.deps.settings.maxAttempts ?? 12)) {
      this.deps.logger.warn(
        { event: event.type, delivery: id, attempts },
        'webhook dropped after repeated failures',
      );
      await this.deps.redis.zrem(this.queueKey, id);
      await this.deps.redis.hdel(this.payloadKey, id);
      return false;
    }
    const backoff = Math.min(2000 * 2 ** (attempts - 1), 3_600_000) * (0.8 + Math.random() * 0.4);
    await this.enqueue({ ...event, attempts }, Date.now() + backoff);
    return false;
  }

  private async enqueue(event: QueuedEvent, at: number): Promise<void> {
    await this.deps.redis.hset(this.payloadKey, event.id, JSON.stringify(event));
    await this.deps.redis.zadd(this.queueKey, Math.round(at), event.id);
  }

  private kick(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(delay = this.deps.settings.pollMs ?? 1000): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
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
