import type { Request, RequestHandler, Response } from 'express';
import { RedisClient } from '../connections/redis-client';

/** A fixed window per key: INCR and, for the first hit, the window's expiry, in one step. */
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
`;

export interface RateLimitOptions {
  redis: RedisClient;
  /** Key prefix, e.g. `ob:rl:auth:`. */
  prefix: string;
  limit: number;
  windowMs: number;
  /** Answers a request over the limit; Retry-After is set already. */
  onLimited: (req: Request, res: Response) => void;
}

export interface RateLimiter {
  /** Counts one hit for this request's client; true when it is over the limit. */
  hit(req: Request, res: Response): Promise<boolean>;
}

/**
 * Per-client limits held in Redis, so they hold across every broker process. The client is
 * `req.ip` (the socket's address unless TRUST_PROXY says which proxy to believe). When Redis is
 * away the limit lets requests through: the steps after it fail with 503 anyway.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  options.redis.defineCommand('obRateHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  const hitCommand = options.redis as unknown as {
    obRateHit(key: string, windowMs: string): Promise<[number, number]>;
  };
  return {
    async hit(req, res) {
      const client = clientKey(req.ip ?? req.socket.remoteAddress ?? 'unknown');
      let count: number;
      let ttl: number;
      try {
        [count, ttl] = await hitCommand.obRateHit(`${options.prefix}${client}`, String(options.windowMs));
      } catch {
        return false;
      }
      if (count <= options.limit) return false;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil((ttl > 0 ? ttl : options.windowMs) / 1000))));
      return true;
    },
  };
}

/** Middleware: every request counts. */
export function rateLimitEveryRequest(options: RateLimitOptions): RequestHandler {
  const limiter = createRateLimiter(options);
  return (req, res, next) => {
    limiter
      .hit(req, res)
      .then((over) => (over ? options.onLimited(req, res) : next()))
      .catch(next);
  };
}

/**
 * The unit a limit counts: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a whole
 * /64 and could otherwise take a fresh budget with every address in it).
 */
export function clientKey(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::')
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g || '0').toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
