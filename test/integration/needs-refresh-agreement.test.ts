import { ConnectionFields, ConnectionStore } from '../../src/connections/connection-store';
import { needsRefresh } from '../../src/connections/needs-refresh';
import { RedisKeys } from '../../src/connections/redis-keys';
import { useRedis } from '../helpers/redis-fixture';

/**
 * The token read's script takes the refresh lock exactly when the caller is going to refresh:
 * the Lua rule (READ_CLAIMING_SCRIPT) and the TypeScript one (needsRefresh) agree on every kind
 * of record and need, against a real Redis.
 */
describe('the token read claims the refresh lock exactly when needsRefresh says so', () => {
  const t = useRedis();
  let store: ConnectionStore;
  const keys = new RedisKeys('agree:');

  beforeAll(() => {
    store = new ConnectionStore(t.client, keys);
  });

  it('agrees on status, mode, refresh token, expiry, min_validity and force_refresh', async () => {
    const now = Date.now();
    let n = 0;
    let claims = 0;
    for (const status of ['active', 'reauthorization_required'] as const)
      for (const auth_mode of ['oauth2', 'api_key'] as const)
        for (const refreshable of [true, false])
          for (const expires_at of [null, now - 1000, now + 30_000, now + 3_600_000])
            for (const minValidityMs of [0, 60_000])
              for (const forceRefresh of [false, true]) {
                n += 1;
                const id = `c${n}`;
                const fields: ConnectionFields = {
                  provider: 'p',
                  connection_id: id,
                  auth_mode,
                  status,
                  scopes: [],
                  expires_at,
                  last_refreshed_at: null,
                  end_user: null,
                  tags: {},
                  last_activity_at: now,
                  last_error: null,
                  refresh_failures: 0,
                  next_refresh_at: null,
                  read_since_refresh: false,
                  refreshable,
                  key_id: 'k1',
                  sealed: 'sealed',
                };
                await store.replace(fields, now);
                const read = await store.readClaiming(
                  'p',
                  id,
                  { key: keys.lock('p', id), owner: 'o', ttlMs: 10_000 },
                  now + minValidityMs,
                  forceRefresh,
                );
                const expected = needsRefresh(read.record!, { minValidityMs, forceRefresh }, now);
                expect({
                  id,
                  status,
                  auth_mode,
                  refreshable,
                  expires_at,
                  minValidityMs,
                  forceRefresh,
                  claimed: read.claimed,
                }).toEqual({
                  id,
                  status,
                  auth_mode,
                  refreshable,
                  expires_at,
                  minValidityMs,
                  forceRefresh,
                  claimed: expected,
                });
                if (read.claimed) claims += 1;
              }
    // The matrix holds both answers.
    expect(claims).toBeGreaterThan(0);
    expect(claims).toBeLessThan(n);
  });
});
