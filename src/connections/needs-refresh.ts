import { ConnectionMeta } from './connection-record';

/** What a token request asks of the token: time left, or a refresh whatever the time left. */
export interface TokenNeed {
  minValidityMs: number;
  forceRefresh: boolean;
}

type RefreshInput = Pick<ConnectionMeta, 'status' | 'auth_mode' | 'refreshable' | 'expires_at'>;

/**
 * Whether the token has at least `minValidityMs` left at `now`. A token of unknown expiry is
 * served until forced or refused.
 */
export function freshFor(
  record: Pick<ConnectionMeta, 'expires_at'>,
  minValidityMs: number,
  now: number,
): boolean {
  return record.expires_at === null || record.expires_at - now >= minValidityMs;
}

/**
 * Whether a token request refreshes the connection before answering: an active oauth2 record
 * with a refresh token whose token is stale for the need, or a forced refresh. The one rule every
 * TypeScript path asks; the token read's script (READ_CLAIMING_SCRIPT in connection-store.ts)
 * states the same in Lua to take the refresh lock in the read's round trip, and a test checks the
 * two agree (test/integration/needs-refresh-agreement.test.ts).
 */
export function needsRefresh(record: RefreshInput, need: TokenNeed, now: number): boolean {
  if (record.status !== 'active' || record.auth_mode !== 'oauth2' || !record.refreshable) return false;
  return need.forceRefresh || !freshFor(record, need.minValidityMs, now);
}
