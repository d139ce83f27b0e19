import { createHash, timingSafeEqual } from 'node:crypto';
import { ACCESS_ACTIONS } from './access-actions';
import { Caller } from './caller';
import { ServiceKey } from './load-service-keys';

/** Resolves an `Authorization` header to the caller it authenticates, or undefined (a 401). */
export type CallerResolver = (header: string | undefined) => Caller | undefined;

/** The header allows 512 characters; Node reads headers as latin1, at most 2 bytes each in UTF-8. */
const WIDTH = 1024;
const BEARER = /^Bearer[ ]+([^\s]{1,512})\s*$/i;

/** `key:<first 8 hex of SHA-256>`: an INTERNAL_API_KEYS key's actor, naming the key without revealing it. */
export function keyActor(key: string): string {
  return `key:${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 8)}`;
}

/**
 * `Authorization: Bearer <key>` against INTERNAL_API_KEYS (every right) and the service keys
 * (their grant). Every configured key is compared every time, whichever matches: the time taken
 * tells neither which key nor how much of one matched, nor how long the keys are.
 *
 * INTERNAL_API_KEYS keys are compared as before: timingSafeEqual over a fixed width, the
 * presented key and each configured one zero-padded to it, the lengths compared apart (no hashing:
 * with no service keys configured, a SHA-256 per request would cost more than the rest of the
 * check). Service keys are stored as SHA-256 digests only (the file holds no secret), so with
 * service keys configured the presented key is hashed once and its digest compared with every
 * service's every digest by timingSafeEqual.
 */
export function createCallerResolver(
  internalApiKeys: readonly string[],
  services: readonly ServiceKey[],
): CallerResolver {
  const admins = internalApiKeys.map((key) => {
    const bytes = Buffer.alloc(WIDTH);
    const length = Buffer.byteLength(key, 'utf8');
    bytes.write(key, 'utf8');
    const caller: Caller = {
      actor: keyActor(key),
      grant: { providers: '*', actions: new Set(ACCESS_ACTIONS) },
      scoped: false,
    };
    // A key wider than the header allows could never be presented whole: it matches nothing.
    return { bytes, length: length <= WIDTH ? length : -1, caller };
  });
  const digests = services.flatMap((service) => {
    const caller: Caller = {
      actor: service.name,
      grant: { providers: service.providers, actions: service.actions },
      scoped: true,
    };
    return service.keySha256.map((digest) => ({ digest, caller }));
  });
  const presented = Buffer.alloc(WIDTH);

  return (header) => {
    const match = BEARER.exec(header ?? '');
    if (!match) return undefined;
    const key = match[1]!;
    let found: Caller | undefined;
    presented.fill(0);
    const length = presented.write(key, 'utf8');
    for (const admin of admins) {
      const sameBytes = timingSafeEqual(presented, admin.bytes);
      const sameLength = length === admin.length;
      if (sameBytes && sameLength) found = admin.caller;
    }
    presented.fill(0);
    if (digests.length === 0) return found;
    const digest = createHash('sha256').update(key, 'utf8').digest();
    for (const entry of digests) {
      if (timingSafeEqual(digest, entry.digest)) found = entry.caller;
    }
    return found;
  };
}
