import { ConnectionFields, ConnectionStore } from '../../src/connections/connection-store';
import { RedisKeys } from '../../src/connections/redis-keys';
import { useRedis } from '../helpers/redis-fixture';

/**
 * A version restarts at 1 when a connection is deleted and made again; the compare-and-set also
 * compares the record's generation, drawn when the record is created, so nothing read from the
 * old record (a refresh, a failure record, a re-seal, a read's mark) lands on the new one.
 */
describe('record generation: compare-and-set across a delete and a reconnect', () => {
  const t = useRedis();
  let store: ConnectionStore;
  const keys = new RedisKeys('gen:');

  const fields = (sealed: string): ConnectionFields => ({
    provider: 'p',
    connection_id: 'c',
    auth_mode: 'oauth2',
    status: 'active',
    scopes: [],
    expires_at: Date.now() + 3_600_000,
    last_refreshed_at: null,
    end_user: null,
    tags: {},
    last_activity_at: Date.now(),
    last_error: null,
    refresh_failures: 0,
    next_refresh_at: null,
    read_since_refresh: false,
    refreshable: true,
    key_id: 'k1',
    sealed,
  });

  beforeAll(() => {
    store = new ConnectionStore(t.client, keys);
  });

  it('refuses a write, a failure record and a mark read before the delete, and takes those read after', async () => {
    await store.replace(fields('old-grant'), Date.now());
    const old = (await store.read('p', 'c'))!;
    expect(old.generation).not.toBe('');
    expect(await store.take('p', 'c')).not.toBeNull();
    await store.replace(fields('new-grant'), Date.now());
    const fresh = (await store.read('p', 'c'))!;
    expect(fresh.version).toBe(old.version);
    expect(fresh.generation).not.toBe(old.generation);

    expect(await store.patch('p', 'c', { sealed: 'refreshed-old-grant' }, Date.now(), old)).toBeNull();
    expect(
      await store.patch(
        'p',
        'c',
        { status: 'reauthorization_required', refresh_failures: 1 },
        Date.now(),
        old,
      ),
    ).toBeNull();
    await store.markRead('p', 'c', null, old);
    const untouched = (await store.read('p', 'c'))!;
    expect(untouched).toMatchObject({ sealed: 'new-grant', status: 'active', read_since_refresh: false });

    // A reconnect over the record (no delete) keeps its generation; the version moves on.
    await store.replace(fields('reconnected'), Date.now());
    const replaced = (await store.read('p', 'c'))!;
    expect(replaced.generation).toBe(fresh.generation);
    expect(await store.patch('p', 'c', { sealed: 'late' }, Date.now(), fresh)).toBeNull();
    expect(await store.patch('p', 'c', { sealed: 'current' }, Date.now(), replaced)).toBe(
      replaced.version + 1,
    );
    expect((await store.read('p', 'c'))!.sealed).toBe('current');
  });

  it('keeps working for a record written before generations existed', async () => {
    await store.replace({ ...fields('legacy'), connection_id: 'legacy' }, Date.now());
    await t.client.hdel(keys.connection('p', 'legacy'), 'gen');
    const legacy = (await store.read('p', 'legacy'))!;
    expect(legacy.generation).toBe('');
    expect(await store.patch('p', 'legacy', { sealed: 'refreshed' }, Date.now(), legacy)).toBe(
      legacy.version + 1,
    );
  });
});
