import Redis from 'ioredis';
import { FakeProvider } from '../helpers/fake-provider';
import { TestRedis } from '../helpers/redis-server';
import { TestBroker, providerEnv, startTestBroker, testKey } from '../helpers/broker-harness';

/** Every key of the Redis with every value it holds, whatever its type. */
async function dumpRedis(client: Redis): Promise<Array<{ key: string; type: string; values: string[] }>> {
  const out: Array<{ key: string; type: string; values: string[] }> = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await client.type(key);
      let values: string[] = [];
      if (type === 'string') values = [(await client.get(key)) ?? ''];
      else if (type === 'hash') values = Object.entries(await client.hgetall(key)).flat();
      else if (type === 'zset') values = await client.zrange(key, 0, -1);
      else if (type === 'set') values = await client.smembers(key);
      else if (type === 'list') values = await client.lrange(key, 0, -1);
      else if (type === 'stream')
        values = (await client.xrange(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields]);
      out.push({ key, type, values });
    }
  } while (cursor !== '0');
  return out;
}

const connKey = (provider: string, id: string) => `ob:{${provider}:${id}}:conn`;
/** The sealed tokens live in a string beside the hash. */
const sealedKey = (provider: string, id: string) => `ob:{${provider}:${id}}:sealed`;

describe('tokens at rest: AES-256-GCM bound to the connection (docs/security.md)', () => {
  const KEY_OLD = `kold:${testKey()}`;
  const KEY_NEW = `knew:${testKey()}`;
  let redis: TestRedis;
  let client: Redis;
  let fake: FakeProvider;
  let broker: TestBroker;
  const imported: string[] = [];
  /** Both keys of a connection as they sit in Redis. */
  const record = async (provider: string, id: string) => ({
    hash: await client.hgetall(connKey(provider, id)),
    sealed: await client.getBuffer(sealedKey(provider, id)),
  });

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    fake = await FakeProvider.start();
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      TOKEN_ENCRYPTION_KEYS: KEY_OLD,
      ...providerEnv('bonjoro', fake.url),
      ...providerEnv('bexio', fake.url, { BEXIO_ISSUER: '' }),
    });
  });

  afterAll(async () => {
    client.disconnect();
    await broker.close();
    await fake.close();
    await redis.close();
  });

  it('writes no plaintext token, client secret or authorization code to any Redis value or key', async () => {
    for (const id of ['enc-a', 'enc-b']) {
      const result = await broker.connect('bonjoro', id);
      expect(result.callback.status).toBe(200);
    }
    expect((await broker.connect('bexio', 'enc-c')).callback.status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const access = `imported-access-${i}-${Math.random().toString(36).slice(2)}`;
      const refresh = `imported-refresh-${i}-${Math.random().toString(36).slice(2)}`;
      imported.push(access, refresh);
      const put = await broker.api(`/internal/connections/bonjoro/imp-${i}`, {
        method: 'PUT',
        body: { access_token: access, refresh_token: refresh, expires_in: 3600 },
      });
      expect(put.status).toBe(201);
    }
    // A refresh writes tokens too.
    const refreshed = await broker.api('/internal/connections/bonjoro/enc-a/token?force_refresh=true');
    expect(refreshed.status).toBe(200);

    const secrets = [
      ...fake.issued.flatMap((t) => [t.access_token, t.refresh_token ?? '']).filter(Boolean),
      ...imported,
      'bonjoro-secret',
      'bexio-secret',
      'code-enc-a',
      'code-enc-b',
      'code-enc-c',
    ];
    expect(fake.issued.length).toBeGreaterThanOrEqual(4);
    const dump = await dumpRedis(client);
    expect(dump.some((d) => d.key === connKey('bonjoro', 'enc-a'))).toBe(true);
    for (const entry of dump) {
      const haystack = [entry.key, ...entry.values].join('\n');
      for (const secret of secrets) {
        if (haystack.includes(secret))
          throw new Error(`a secret sits in Redis under ${entry.key} (${entry.type})`);
      }
    }
  });

  it('stores the key id beside the ciphertext and shows it in the metadata', async () => {
    expect(await client.hget(connKey('bonjoro', 'enc-a'), 'key_id')).toBe('kold');
    const meta = await broker.api('/internal/connections/bonjoro/enc-a');
    expect(meta.body.key_id).toBe('kold');
  });

  it('seals each write with a fresh IV: the same tokens imported twice give two ciphertexts', async () => {
    const body = {
      access_token: 'same-access',
      refresh_token: 'same-refresh',
      expires_at: '2099-01-01T00:00:00Z',
    };
    await broker.api('/internal/connections/bonjoro/iv-1', { method: 'PUT', body });
    const first = await client.getBuffer(sealedKey('bonjoro', 'iv-1'));
    await broker.api('/internal/connections/bonjoro/iv-1', { method: 'PUT', body });
    const second = await client.getBuffer(sealedKey('bonjoro', 'iv-1'));
    expect(first).toBeTruthy();
    expect(second).not.toEqual(first);
    // Stored as bytes: a version byte, then the IV (12 bytes), the tag, the ciphertext.
    expect(first![0]).toBe(1);
    expect(first!.subarray(1, 13).equals(second!.subarray(1, 13))).toBe(false);
  });

  it('answers 500 decryption_failed for a ciphertext copied into another connection, and leaves that record untouched', async () => {
    const source = await record('bonjoro', 'imp-0');
    expect(source.sealed).toBeTruthy();
    await client.set(sealedKey('bonjoro', 'imp-1'), source.sealed!);
    await client.hset(connKey('bonjoro', 'imp-1'), { key_id: source.hash.key_id! });
    const before = await record('bonjoro', 'imp-1');
    const refreshesBefore = fake.refreshRequests.length;

    for (const query of ['', '?min_validity=0', '?force_refresh=true']) {
      const res = await broker.api(`/internal/connections/bonjoro/imp-1/token${query}`);
      expect(res.body.code).toBe('decryption_failed');
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const text = JSON.stringify(res.body);
      for (const secret of imported) expect(text).not.toContain(secret);
      expect(text).not.toMatch(/\bat .+:\d+:\d+|node_modules/);
    }
    expect(await record('bonjoro', 'imp-1')).toEqual(before);
    expect(fake.refreshRequests.length).toBe(refreshesBefore);
    // The source still opens where it belongs.
    const own = await broker.api('/internal/connections/bonjoro/imp-0/token');
    expect(own.status).toBe(200);
    expect(own.body.access_token).toBe(imported[0]);
  });

  it('takes the AAD from the Redis key asked for: a whole record copied under another key does not open', async () => {
    const source = await record('bonjoro', 'imp-2');
    // The copy claims to be imp-2 in every field; only its Redis keys say imp-3.
    await client.del(connKey('bonjoro', 'imp-3'), sealedKey('bonjoro', 'imp-3'));
    await client.hset(connKey('bonjoro', 'imp-3'), source.hash);
    await client.set(sealedKey('bonjoro', 'imp-3'), source.sealed!);
    const res = await broker.api('/internal/connections/bonjoro/imp-3/token');
    expect(res.body.code).toBe('decryption_failed');
    expect(res.status).toBe(500);
    expect(await record('bonjoro', 'imp-3')).toEqual(source);
  });

  it('answers decryption_failed for a ciphertext with one bit flipped', async () => {
    const sealed = (await client.getBuffer(sealedKey('bonjoro', 'imp-4')))!;
    sealed[sealed.length - 1]! ^= 1;
    await client.set(sealedKey('bonjoro', 'imp-4'), sealed);
    const res = await broker.api('/internal/connections/bonjoro/imp-4/token');
    expect(res.body.code).toBe('decryption_failed');
    expect(res.status).toBe(500);
  });

  describe('key ring changes', () => {
    it('answers decryption_failed naming the key id when the record is sealed under a key removed from the ring', async () => {
      const other = await startTestBroker({
        REDIS_URL: redis.url,
        TOKEN_ENCRYPTION_KEYS: KEY_NEW,
        ...providerEnv('bonjoro', fake.url),
      });
      try {
        const before = await record('bonjoro', 'enc-b');
        const refreshesBefore = fake.refreshRequests.length;
        const res = await other.api('/internal/connections/bonjoro/enc-b/token');
        expect(res.body.code).toBe('decryption_failed');
        expect(res.status).toBe(500);
        expect(res.body.detail).toContain('kold');
        const forced = await other.api('/internal/connections/bonjoro/enc-b/token?force_refresh=true');
        expect(forced.body.code).toBe('decryption_failed');
        expect(fake.refreshRequests.length).toBe(refreshesBefore);
        expect(await record('bonjoro', 'enc-b')).toEqual(before);
        // Metadata holds no secret, so it still answers, and says which key the record needs.
        const meta = await other.api('/internal/connections/bonjoro/enc-b');
        expect(meta.status).toBe(200);
        expect(meta.body.key_id).toBe('kold');
      } finally {
        await other.close();
      }
    });

    it('opens a record under a second key of the ring without re-sealing it on read, and re-seals it under the first key on refresh', async () => {
      const rotated = await startTestBroker({
        REDIS_URL: redis.url,
        TOKEN_ENCRYPTION_KEYS: `${KEY_NEW},${KEY_OLD}`,
        ...providerEnv('bonjoro', fake.url),
      });
      try {
        const sealedBefore = await client.get(sealedKey('bonjoro', 'enc-b'));
        expect(sealedBefore).toBeTruthy();
        const read = await rotated.api('/internal/connections/bonjoro/enc-b/token?min_validity=0');
        expect(read.status).toBe(200);
        expect(await client.hget(connKey('bonjoro', 'enc-b'), 'key_id')).toBe('kold');
        expect(await client.get(sealedKey('bonjoro', 'enc-b'))).toBe(sealedBefore);

        const refreshed = await rotated.api('/internal/connections/bonjoro/enc-b/token?force_refresh=true');
        expect(refreshed.status).toBe(200);
        expect(refreshed.body.access_token).not.toBe(read.body.access_token);
        expect(await client.hget(connKey('bonjoro', 'enc-b'), 'key_id')).toBe('knew');
        expect((await rotated.api('/internal/connections/bonjoro/enc-b')).body.key_id).toBe('knew');
      } finally {
        await rotated.close();
      }
      // The broker that only knows the old key can no longer open it.
      const res = await broker.api('/internal/connections/bonjoro/enc-b/token');
      expect(res.body.code).toBe('decryption_failed');
    });
  });
});
