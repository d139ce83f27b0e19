import { createHash, hash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { BrokerError } from '../errors/broker-error';

/**
 * `Authorization: Bearer <key>` against INTERNAL_API_KEYS (several, for rotation). Keys are
 * compared as SHA-256 digests with timingSafeEqual, every key every time: the time taken tells
 * neither which key nor how much of one matched.
 */
export type AuthFailureHandler = (req: Request, res: Response, deny: (error?: unknown) => void) => void;

/** One-shot SHA-256 (`crypto.hash`, Node ≥ 20.12) costs half of createHash().update().digest(). */
const sha256 = (value: string): Buffer =>
  typeof hash === 'function' ? hash('sha256', value, 'buffer') : createHash('sha256').update(value).digest();

export function requireInternalKey(keys: readonly string[], onFailure?: AuthFailureHandler): RequestHandler {
  const digests = keys.map(sha256);
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer[ ]+([^\s]{1,512})\s*$/i.exec(header);
    let ok = false;
    if (match) {
      const presented = sha256(match[1]!);
      for (const digest of digests) ok = timingSafeEqual(presented, digest) || ok;
    }
    if (ok) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="oauth-broker-internal"');
    const deny = (error?: unknown): void =>
      next(error ?? new BrokerError('unauthorized', 'A valid internal API key is required (Authorization: Bearer <key>).'));
    if (onFailure) return onFailure(req, res, deny);
    deny();
  };
}
