import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { BrokerError } from '../errors/broker-error';

/**
 * `Authorization: Bearer <key>` against INTERNAL_API_KEYS (several, for rotation). Every key is
 * compared every time with timingSafeEqual over a fixed width, the presented key and each
 * configured one zero-padded to it, and the lengths compared apart: the time taken tells neither
 * which key nor how much of one matched, nor how long the keys are. (No hashing: a SHA-256 per
 * request cost more than the rest of the check, through OpenSSL's one-shot digest.)
 */
export type AuthFailureHandler = (req: Request, res: Response, deny: (error?: unknown) => void) => void;

/** The header allows 512 characters; Node reads headers as latin1, which is at most 2 bytes each in UTF-8. */
const WIDTH = 1024;

/**
 * Whether an Authorization header presents one of `keys`: every key is compared every time, over
 * the fixed width, so the time taken tells nothing (see above).
 */
export function internalKeyMatcher(keys: readonly string[]): (header: string | undefined) => boolean {
  const padded = keys.map((key) => {
    const bytes = Buffer.alloc(WIDTH);
    const length = Buffer.byteLength(key, 'utf8');
    bytes.write(key, 'utf8');
    // A key wider than the header allows could never be presented whole: it matches nothing.
    return { bytes, length: length <= WIDTH ? length : -1 };
  });
  const presented = Buffer.alloc(WIDTH);
  return (header) => {
    const match = /^Bearer[ ]+([^\s]{1,512})\s*$/i.exec(header ?? '');
    if (!match) return false;
    let ok = false;
    presented.fill(0);
    const length = presented.write(match[1]!, 'utf8');
    for (const key of padded) {
      const sameBytes = timingSafeEqual(presented, key.bytes);
      const sameLength = length === key.length;
      ok = (sameBytes && sameLength) || ok;
    }
    presented.fill(0);
    return ok;
  };
}

export function requireInternalKey(keys: readonly string[], onFailure?: AuthFailureHandler): RequestHandler {
  const keyMatches = internalKeyMatcher(keys);
  return (req, res, next) => {
    if (keyMatches(req.headers.authorization)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="oauth-broker-internal"');
    const deny = (error?: unknown): void =>
      next(
        error ??
          new BrokerError(
            'unauthorized',
            'A valid internal API key is required (Authorization: Bearer <key>).',
          ),
      );
    if (onFailure) return onFailure(req, res, deny);
    deny();
  };
}
