import session from 'express-session';
import { RedisStore } from 'connect-redis';
import type { RequestHandler } from 'express';
import { RedisClient } from '../connections/redis-client';

declare module 'express-session' {
  interface SessionData {
    /**
     * The random secret that binds this browser's flows (each kept in its own Redis key) to it.
     * It moves to the new session when the session is regenerated at a flow start, while flows
     * may still be under way.
     */
    binding?: string;
    /** Until when (ms) a flow started under this binding may still come back. */
    binding_until?: number;
  }
}

/** A flow lives as long as its `state` may come back: 10 minutes (RFC 9700 §4.7.1 asks short). */
export const FLOW_TTL_MS = 10 * 60 * 1000;

export interface SessionOptions {
  redis: RedisClient;
  prefix: string;
  secrets: string[];
  secureCookie: boolean;
}

export const SESSION_COOKIE = 'ob.sid';

/**
 * express-session on connect-redis: any process can serve any step of a flow. The cookie is
 * HttpOnly, SameSite=Lax (Strict would drop it on the provider's redirect back), Path=/, Secure
 * when PUBLIC_URL is https. The first secret signs; all verify.
 */
export function createSessionMiddleware(options: SessionOptions): RequestHandler {
  // No touch: a session lives as long as its flows (saved at each step with the cookie's TTL), so
  // extending it on every read would only cost a Redis round trip per callback.
  const store = new RedisStore({ client: options.redis, prefix: options.prefix, disableTouch: true });
  return session({
    name: SESSION_COOKIE,
    store,
    secret: options.secrets,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      path: '/',
      secure: options.secureCookie,
      maxAge: 60 * 60 * 1000,
    },
  });
}

/**
 * Browsers reach this listener at PUBLIC_URL; when that is https, a TLS proxy in front of us
 * terminates it and the socket we see is plain. Mark the request as the https one it is, so
 * express-session sets the Secure cookie whatever headers the proxy forwards (and none is
 * trusted: X-Forwarded-* never decide anything here).
 */
export function markPublicRequestsSecure(): RequestHandler {
  return (req, _res, next) => {
    (req.socket as { encrypted?: boolean }).encrypted = true;
    next();
  };
}
