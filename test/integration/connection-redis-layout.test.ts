import Redis from 'ioredis';
import { aadFor } from '../../src/connections/connection-secrets';
import { ConnectionStore } from '../../src/connections/connection-store';
import { KeyRing } from '../../src/connections/key-ring';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';

/**
 * How one connection sits in Redis: a hash of metadata and, beside it under the same hash tag, a
 * string holding the sealed tokens. Redis keeps a hash as a compact listpack only while every value
 * is at most `hash-max-listpack-value` (64 B by default); the sealed tokens are larger, so they live
 * in their own key.
 */
describe('connection records in Redis: a small hash and the sealed tokens beside it', () => {
  let redis: TestRedis;
  let client: Redis;
  let fake: FakeProvider;
  let broker: TestBroker;

  const hashKey = (id: string) => `ob:{bonjoro:${id}}:conn`;
  const sealedKey = (id: string) => `ob:{bonjoro:${id}}:sealed`;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    fake = await FakeProvider.start();
    broker = await startTestBroker({ REDIS_URL: redis.url, ...providerEnv('bonjoro', fake.url) });
  });

  afterAll(async () => {
    await broker?.close();
    client?.disconnect();
    await fake?.close();
    await redis?.close();
  });

  async function importTokens(id: string): Promise<void> {
    const res = await broker.api(`/internal/connections/bonjoro/${id}`, {
      method: 'PUT',
      body: { access_token: `at-${id}-${'x'.repeat(120)}`, refresh_token: `rt-${id}`, expires_in: 3600 },
    });
    expect([200, 201]).toContain(res.status);
  }

  it('keeps the sealed tokens in their own string key, so every hash value is small and the hash stays a listpack', async () => {
    await importTokens('layout-1');
    const hash = await client.hgetall(hashKey('layout-1'));
    expect(hash.version).toBe('1');
    expect(Object.keys(hash)).not.toContain('sealed');
    for (const value of Object.values(hash)) expect(Buffer.byteLength(value)).toBeLessThanOrEqual(64);
    expect(await client.object('ENCODING', hashKey('layout-1'))).toBe('listpack');
    expect(await client.type(sealedKey('layout-1'))).toBe('string');
    const sealed = (await client.getBuffer(sealedKey('layout-1')))!;
    expect(sealed.length).toBeGreaterThan(64);
    expect(sealed.includes('at-layout-1')).toBe(false);

    const token = await broker.api('/internal/connections/bonjoro/layout-1/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBe(`at-layout-1-${'x'.repeat(120)}`);
    // Fields at their default are left out of the hash and still read as that default.
    const meta = await broker.api('/internal/connections/bonjoro/layout-1');
    expect(meta.body).toMatchObject({ status: 'active', auth_mode: 'oauth2', refresh_failures: 0 });
  });

  it('rewrites the sealed key on a refresh and on a re-import, never putting the tokens into the hash', async () => {
    // Connected through the fake provider, so its refresh token is one the provider accepts.
    expect((await broker.connect('bonjoro', 'layout-2')).callback.status).toBe(200);
    const first = await client.getBuffer(sealedKey('layout-2'));
    const before = await broker.api('/internal/connections/bonjoro/layout-2/token');
    expect(before.status).toBe(200);
    const createdAt = await client.hget(hashKey('layout-2'), 'created_at');

    const refreshed = await broker.api('/internal/connections/bonjoro/layout-2/token?force_refresh=true');
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(before.body.access_token);
    const second = await client.getBuffer(sealedKey('layout-2'));
    expect(second).toBeTruthy();
    expect(second).not.toEqual(first);
    expect(await client.hexists(hashKey('layout-2'), 'sealed')).toBe(0);
    expect(Number(await client.hget(hashKey('layout-2'), 'version'))).toBeGreaterThan(1);

    await importTokens('layout-2');
    expect(await client.getBuffer(sealedKey('layout-2'))).not.toEqual(second);
    expect(await client.hexists(hashKey('layout-2'), 'sealed')).toBe(0);
    expect(await client.hget(hashKey('layout-2'), 'created_at')).toBe(createdAt);
    expect((await broker.api('/internal/connections/bonjoro/layout-2/token')).body.access_token).toBe(
      `at-layout-2-${'x'.repeat(120)}`,
    );
  });

  it('deletes both keys of a connection', async () => {
    await importTokens('layout-3');
    expect(await client.exists(hashKey('layout-3'), sealedKey('layout-3'))).toBe(2);
    const res = await broker.api('/internal/connections/bonjoro/layout-3', { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await client.exists(hashKey('layout-3'), sealedKey('layout-3'))).toBe(0);
  });

  it('answers decryption_failed for a hash whose sealed key is gone, and connection_not_found for a sealed key without its hash', async () => {
    await importTokens('layout-4');
    await client.del(sealedKey('layout-4'));
    const orphanHash = await broker.api('/internal/connections/bonjoro/layout-4/token');
    expect(orphanHash.status).toBe(500);
    expect(orphanHash.body.code).toBe('decryption_failed');
    expect((await broker.api('/internal/connections/bonjoro/layout-4')).status).toBe(200);

    await importTokens('layout-5');
    await client.del(hashKey('layout-5'));
    const orphanSealed = await broker.api('/internal/connections/bonjoro/layout-5/token');
    expect(orphanSealed.status).toBe(404);
    expect(orphanSealed.body.code).toBe('connection_not_found');
  });

  it('leaves out of the hash what the key names, and writes scopes space-separated', async () => {
    const put = await broker.api('/internal/connections/bonjoro/compact-1', {
      method: 'PUT',
      body: { access_token: 'at-c', refresh_token: 'rt-c', expires_in: 3600, scopes: ['read', 'write:all'] },
    });
    expect(put.status).toBe(201);
    const hash = await client.hgetall(hashKey('compact-1'));
    expect(Object.keys(hash)).not.toContain('provider');
    expect(Object.keys(hash)).not.toContain('connection_id');
    const meta = await broker.api('/internal/connections/bonjoro/compact-1');
    expect(meta.body).toMatchObject({ provider: 'bonjoro', connection_id: 'compact-1' });
    expect(meta.body.scopes).toEqual(['read', 'write:all']);
    expect(hash.scopes).toBe('read write:all');
  });

  it('leaves last_activity_at out while it equals updated_at, and writes it before a patch moves updated_at', async () => {
    const store = new ConnectionStore(broker.broker.redis, broker.broker.keys);
    await importTokens('activity-1');
    const imported = (await store.read('bonjoro', 'activity-1'))!;
    expect(await client.hexists(hashKey('activity-1'), 'last_activity_at')).toBe(0);
    expect(imported.last_activity_at).toBe(imported.updated_at);

    const later = imported.updated_at + 5000;
    expect(await store.patch('bonjoro', 'activity-1', { refresh_failures: 1 }, later, imported)).toBe(
      imported.version + 1,
    );
    const patched = (await store.read('bonjoro', 'activity-1'))!;
    expect(patched.updated_at).toBe(later);
    expect(patched.last_activity_at).toBe(imported.last_activity_at);
    expect(await client.hget(hashKey('activity-1'), 'last_activity_at')).toBe(String(imported.updated_at));

    // Set to the write's own time, it is left out again.
    await store.patch('bonjoro', 'activity-1', { last_activity_at: later + 1 }, later + 1, patched);
    expect(await client.hexists(hashKey('activity-1'), 'last_activity_at')).toBe(0);
    expect((await store.read('bonjoro', 'activity-1'))!.last_activity_at).toBe(later + 1);
  });

  it('reads and rewrites a record the previous version wrote (named fields in the hash, JSON scopes, an object of secrets)', async () => {
    // The previous version's exact shape, sealed under the harness's key k1.
    const ring = new KeyRing([{ id: 'k1', key: Buffer.alloc(32, 7) }]);
    const secrets = { access_token: 'at-old', refresh_token: 'rt-old', token_type: 'Bearer' };
    const now = Date.now();
    await client.hset(hashKey('old-1'), {
      provider: 'bonjoro',
      connection_id: 'old-1',
      scopes: JSON.stringify(['read', 'write']),
      expires_at: String(now + 3_600_000),
      last_activity_at: String(now),
      refreshable: '1',
      key_id: 'k1',
      version: '3',
      updated_at: String(now),
      created_at: String(now - 1000),
      gen: 'oldgeneration',
    });
    // Earlier versions stored base64 text of IV | tag | ciphertext (today: those bytes, after a
    // version byte).
    const sealed = ring.seal(JSON.stringify(secrets), aadFor('bonjoro', 'old-1')).data;
    await client.set(sealedKey('old-1'), Buffer.from(sealed, 'latin1').subarray(1).toString('base64'));

    const token = await broker.api('/internal/connections/bonjoro/old-1/token');
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({
      access_token: 'at-old',
      token_type: 'Bearer',
      scopes: ['read', 'write'],
    });
    // A mark-read patch on the old shape keeps it readable.
    await until(async () =>
      (await client.hget(hashKey('old-1'), 'read_since_refresh')) === '1' ? true : undefined,
    );
    expect((await broker.api('/internal/connections/bonjoro/old-1/token')).body.access_token).toBe('at-old');
    expect((await broker.api('/internal/connections/bonjoro/old-1')).body.scopes).toEqual(['read', 'write']);
    // A re-import writes it whole, in the new shape, keeping created_at and the generation.
    await importTokens('old-1');
    const rewritten = await client.hgetall(hashKey('old-1'));
    expect(rewritten).toMatchObject({ version: '4', gen: 'oldgeneration', created_at: String(now - 1000) });
    expect(Object.keys(rewritten)).not.toContain('provider');
    expect((await broker.api('/internal/connections/bonjoro/old-1/token')).body.access_token).toBe(
      `at-old-1-${'x'.repeat(120)}`,
    );
  });

  it('reads a record whatever its fields hold, and treats a damaged field as empty rather than failing', async () => {
    const store = new ConnectionStore(broker.broker.redis, broker.broker.keys);
    await importTokens('odd-1');
    const before = (await store.read('bonjoro', 'odd-1'))!;
    // By hand: a newline, quotes, a backslash and non-ASCII in a field, then broken JSON fields.
    await client.hset(hashKey('odd-1'), 'scopes', JSON.stringify(['a\nb', '"q\\"', 'ü']));
    const odd = (await store.read('bonjoro', 'odd-1'))!;
    expect(odd.scopes).toEqual(['a\nb', '"q\\"', 'ü']);
    expect({ ...odd, scopes: before.scopes }).toEqual(before);
    expect((await broker.api('/internal/connections/bonjoro/odd-1/token')).body.scopes).toEqual(odd.scopes);

    await client.hset(hashKey('odd-1'), 'scopes', '["a\nb', 'last_error', '{not json');
    const damaged = (await store.read('bonjoro', 'odd-1'))!;
    expect(damaged.scopes).toEqual([]);
    expect(damaged.last_error).toBeNull();
    expect((await broker.api('/internal/connections/bonjoro/odd-1/token')).status).toBe(200);

    expect(await store.read('bonjoro', 'odd-nothing')).toBeNull();
    expect(await store.take('bonjoro', 'odd-nothing')).toBeNull();
    const taken = (await store.take('bonjoro', 'odd-1'))!;
    expect(taken.sealed).toBe(before.sealed);
    expect(await client.exists(hashKey('odd-1'), sealedKey('odd-1'))).toBe(0);
  });

  it('takes the refresh lock and reads the record in one round trip, and reads nothing while another holds it', async () => {
    const store = new ConnectionStore(broker.broker.redis, broker.broker.keys);
    const lockKey = broker.broker.keys.lock('bonjoro', 'lock-1');
    await importTokens('lock-1');
    const taken = await store.lockAndRead('bonjoro', 'lock-1', {
      key: lockKey,
      owner: 'owner-a',
      ttlMs: 5_000,
    });
    expect(taken?.record).toEqual(await store.read('bonjoro', 'lock-1'));
    expect(await client.get(lockKey)).toBe('owner-a');
    const ttl = await client.pttl(lockKey);
    expect(ttl).toBeGreaterThan(4_000);
    expect(ttl).toBeLessThanOrEqual(5_000);

    expect(
      await store.lockAndRead('bonjoro', 'lock-1', { key: lockKey, owner: 'owner-b', ttlMs: 5_000 }),
    ).toBeNull();
    expect(await client.get(lockKey)).toBe('owner-a');

    await client.del(lockKey);
    const gone = await store.lockAndRead('bonjoro', 'lock-none', {
      key: broker.broker.keys.lock('bonjoro', 'lock-none'),
      owner: 'owner-c',
      ttlMs: 5_000,
    });
    expect(gone).toEqual({ record: null });
    expect(await client.get(broker.broker.keys.lock('bonjoro', 'lock-none'))).toBe('owner-c');
  });

  it('takes the refresh lock in the token read exactly when a refresh follows, and never leaves it behind', async () => {
    const store = new ConnectionStore(broker.broker.redis, broker.broker.keys);
    const lockKey = (id: string) => broker.broker.keys.lock('bonjoro', id);
    const put = async (id: string, body: object) =>
      expect((await broker.api(`/internal/connections/bonjoro/${id}`, { method: 'PUT', body })).status).toBe(
        201,
      );
    await put('claim-fresh', { access_token: 'at-1', refresh_token: 'rt-1', expires_in: 3600 });
    await put('claim-stale', { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 60 });
    await put('claim-plain', { access_token: 'at-3', expires_in: 60 });
    await put('claim-forever', { access_token: 'at-4', refresh_token: 'rt-4' });
    await put('claim-revoked', { access_token: 'at-5', refresh_token: 'rt-5', expires_in: 60 });
    await client.hset(hashKey('claim-revoked'), 'status', 'reauthorization_required');

    const staleBefore = Date.now() + 300_000; // REFRESH_MARGIN's 300 s
    const read = (id: string, force = false, owner = `owner-${id}`) =>
      store.readClaiming('bonjoro', id, { key: lockKey(id), owner, ttlMs: 5_000 }, staleBefore, force);
    const cases: Array<[string, boolean, boolean]> = [
      ['claim-fresh', false, false], // fresh: served as it is
      ['claim-stale', false, true], // stale with a refresh token: refreshed
      ['claim-plain', false, false], // stale without one: served while it lives
      ['claim-forever', false, false], // no expiry known: served until forced
      ['claim-revoked', false, false], // needs the user: answered 409
      ['claim-fresh', true, true], // forced
      ['claim-forever', true, true], // forced
      ['claim-plain', true, false], // forced, but nothing to refresh with
    ];
    for (const [id, force, expected] of cases) {
      await client.del(lockKey(id));
      const { record, claimed } = await read(id, force);
      expect([id, force, claimed]).toEqual([id, force, expected]);
      expect(record).toEqual(await store.read('bonjoro', id));
      expect(await client.get(lockKey(id))).toBe(expected ? `owner-${id}` : null);
      // Held: a second reader does not take it, and the record still reads.
      if (expected) expect((await read(id, force, 'someone-else')).claimed).toBe(false);
      await client.del(lockKey(id));
    }
    expect(await read('claim-nothing')).toEqual({ record: null, claimed: false });
    expect(await client.exists(lockKey('claim-nothing'))).toBe(0);

    // Through the API: a stale token is refreshed once and the lock is gone when the caller has its answer.
    const refreshes = fake.refreshRequests.length;
    const answered = await broker.api('/internal/connections/bonjoro/claim-stale/token');
    expect(answered.status).toBe(409); // rt-2 is not one the fake provider issued: invalid_grant
    expect(fake.refreshRequests.length).toBe(refreshes + 1);
    expect(await client.exists(lockKey('claim-stale'))).toBe(0);
  });
});
