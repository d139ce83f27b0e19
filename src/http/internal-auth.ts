import type { Request, RequestHandler, Response } from 'express';
import { Caller } from '../access/caller';
import { BrokerError } from '../errors/broker-error';
import { InternalAccess, unauthorizedError } from './internal-access';

export type AuthFailureHandler = (req: Request, res: Response, deny: (error?: unknown) => void) => void;

/**
 * `Authorization: Bearer <key>` against INTERNAL_API_KEYS and the service keys (constant time, see
 * src/access/caller-resolver.ts). The caller it resolves to is kept in `res.locals.caller` for the
 * routes' own checks of action and provider; no key, or a wrong one, is `401 unauthorized`, with
 * an audit entry unless the per-IP limit of failed authentications answers 429 instead (a flood
 * of bad keys must not push real entries out of the capped log).
 */
export function requireInternalKey(access: InternalAccess, onFailure?: AuthFailureHandler): RequestHandler {
  return (req, res, next) => {
    const caller = access.resolve(req.headers.authorization);
    if (caller) {
      res.locals.caller = caller;
      return next();
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="oauth-broker-internal"');
    const deny = (error?: unknown): void => {
      const refusal = error ?? unauthorizedError();
      if (refusal instanceof BrokerError && refusal.code === 'unauthorized')
        access.refusedUnauthorized(req, res.locals.requestId as string | undefined);
      next(refusal);
    };
    if (onFailure) return onFailure(req, res, deny);
    deny();
  };
}

/** The caller `requireInternalKey` resolved for this request. */
export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  // Routes are registered behind requireInternalKey: no caller here is a wiring fault.
  if (!caller) throw new Error('internal route reached without an authenticated caller');
  return caller;
}
