import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { providerEnv, testKey } from '../helpers/broker-harness';
import { unschedule } from '../helpers/index-entries';

/**
 * Someone who can write to Redis but holds no key moves one connection's sealed tokens to another
 * connection. The AAD (provider + connection_id of the connection asked for, taken from the Redis
 * key, never from the record's fields) makes the moved ciphertext fail to open: 500
 * decryption_failed, the record untouched, and no token of the victim ever used by the broker
 * (served, refreshed or revoked) on the other connection's behalf.
 */
describe('ciphertext swap between connections', () => {
  const t = useBrokerOnRedis((fakeUrl) => ({
    TOKEN_ENCRYPTION_KEYS: `k2:${testKey()},k1:${testKey()}`,
    ...providerEnv('bonjoro', fakeUrl),
    PROCESS_STREET_AUTH_MODE: 'api_key',
  }));

  const conn = (provider: string, id: string) => `ob:{${provider}:${id}}:conn`;
  /** The sealed tokens live in a string beside the hash. */
  const sealedKey = (provider: string, id: string) => `ob:{${provider}:${id}}:sealed`;
  /** Both keys of a connection as they sit in Redis. */
  const record = async (provider: string, id: string) => ({
    hash: await t.client.hgetall(conn(provider, id)),
    sealed: await t.client.getBuffer(sealedKey(provider, id)),
  });
  /** Writes a snapshot over a connection's two keys, replacing whatever they held. */
  const overwrite = async (
    provider: string,
    id: string,
    copy: { hash: Record<string, string>; sealed: Buffer | null },
  ) => {
    await t.client.del(conn(provider, id), sealedKey(provider, id));
    await t.client.hset(conn(provider, id), copy.hash);
    await t.client.set(sealedKey(provider, id), copy.sealed!);
  };
  /** Moves one connection's sealed tokens and key id onto another, leaving its other fields. */
  const moveSealed = async (from: [string, string], to: [string, string]) => {
    const victim = await record(...from);
    expect(victim.sealed).toBeTruthy();
    await t.client.set(sealedKey(...to), victim.sealed!);
    await t.client.hset(conn(...to), { key_id: victim.hash.key_id! });
  };

  async function importTokens(
    provider: string,
    id: string,
    secret: string,
    body: Record<string, unknown> = {},
  ): Promise<void> {
    const res = await t.broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: `at-${secret}`, refresh_token: `rt-${secret}`, expires_in: 3600, ...body },
    });
    expect(res.status).toBe(201);
  }

  function expectNoSecretOf(secret: string, value: unknown): void {
    expect(JSON.stringify(value)).not.toContain(secret);
  }

  it('stores no plaintext token in Redis', async () => {
    await importTokens('jobber', 'acct-plain-check', 'plain-check-9f3e');
    const stored = await record('jobber', 'acct-plain-check');
    expect(Object.keys(stored.hash)).toContain('key_id');
    expect(Object.keys(stored.hash)).not.toContain('sealed');
    expect(stored.sealed).toBeTruthy();
    expectNoSecretOf('plain-check-9f3e', stored);
    expectNoSecretOf(Buffer.from('plain-check-9f3e').toString('base64'), stored);
  });

  it('refuses a sealed blob moved to another connection of the same provider, and leaves the record as it was', async () => {
    await importTokens('jobber', 'acct-victim-1', 'victim-1');
    await importTokens('jobber', 'acct-target-1', 'target-1');
    await moveSealed(['jobber', 'acct-victim-1'], ['jobber', 'acct-target-1']);
    const swapped = await record('jobber', 'acct-target-1');

    const res = await t.broker.api('/internal/connections/jobber/acct-target-1/token');
    expect(res.body.code).toBe('decryption_failed');
    expect(res.status).toBe(500);
    expectNoSecretOf('victim-1', res.body);
    expect(await record('jobber', 'acct-target-1')).toEqual(swapped);

    // The victim itself is unharmed.
    const own = await t.broker.api('/internal/connections/jobber/acct-victim-1/token');
    expect(own.body.access_token).toBe('at-victim-1');
  });

  it('refuses a sealed blob moved to the same connection id under another provider', async () => {
    await importTokens('jobber', 'acct-shared-id', 'cross-provider');
    await importTokens('bonjoro', 'acct-shared-id', 'other-provider');
    await moveSealed(['jobber', 'acct-shared-id'], ['bonjoro', 'acct-shared-id']);

    const res = await t.broker.api('/internal/connections/bonjoro/acct-shared-id/token');
    expect(res.body.code).toBe('decryption_failed');
    expectNoSecretOf('cross-provider', res.body);
  });

  it('refuses a whole record copied over another, its provider and connection_id fields included', async () => {
    await importTokens('jobber', 'acct-victim-2', 'victim-2');
    await importTokens('jobber', 'acct-target-2', 'target-2');
    await overwrite('jobber', 'acct-target-2', await record('jobber', 'acct-victim-2'));

    const res = await t.broker.api('/internal/connections/jobber/acct-target-2/token');
    expect(res.body.code).toBe('decryption_failed');
    expectNoSecretOf('victim-2', res.body);
    const forced = await t.broker.api('/internal/connections/jobber/acct-target-2/token?force_refresh=true');
    expect(forced.body.code).toBe('decryption_failed');
    expect(t.fake.refreshRequests.filter((r) => r.params.refresh_token === 'rt-victim-2')).toHaveLength(0);
    // The record is read as the connection asked for, whatever its fields claim.
    const meta = await t.broker.api('/internal/connections/jobber/acct-target-2');
    expect(meta.body.connection_id).toBe('acct-target-2');
  });

  it("never refreshes the victim's refresh token in the background from a copied record", async () => {
    await importTokens('jobber', 'acct-victim-3', 'victim-3');
    await importTokens('jobber', 'acct-target-3', 'target-3');
    const past = String(Date.now() - 60_000);
    await t.client.hset(conn('jobber', 'acct-victim-3'), { next_refresh_at: past });
    const victim = await record('jobber', 'acct-victim-3');
    await overwrite('jobber', 'acct-target-3', victim);
    await t.client.zadd('ob:schedule', past, 'jobber:acct-target-3');
    await unschedule(t.client, 'ob:', 'jobber:acct-victim-3');

    const provider = t.broker.broker.registry.get('jobber')!;
    await t.broker.broker.connections.refreshInBackground(provider, 'acct-target-3');
    expect(t.fake.refreshRequests.filter((r) => r.params.refresh_token === 'rt-victim-3')).toHaveLength(0);
    // The victim's record was not rewritten through the copy.
    expect(await record('jobber', 'acct-victim-3')).toEqual(victim);
  });

  it("never revokes the victim's token when the connection holding a copied record is deleted", async () => {
    await importTokens('jobber', 'acct-victim-4', 'victim-4');
    await importTokens('jobber', 'acct-target-4', 'target-4');
    await overwrite('jobber', 'acct-target-4', await record('jobber', 'acct-victim-4'));

    const res = await t.broker.api('/internal/connections/jobber/acct-target-4', { method: 'DELETE' });
    expect(res.status).toBe(204);
    await t.broker.broker.connections.drain();
    const revoked = t.fake.revocations.map((r) => r.params.token);
    expect(revoked).not.toContain('rt-victim-4');
    expect(revoked).not.toContain('at-victim-4');
    expect((await t.broker.api('/internal/connections/jobber/acct-victim-4/token')).body.access_token).toBe(
      'at-victim-4',
    );
  });

  it('refuses an API key moved between connections', async () => {
    for (const [id, key] of [
      ['acct-key-victim', 'key-victim-5'],
      ['acct-key-target', 'key-target-5'],
    ]) {
      const res = await t.broker.api(`/internal/connections/process-street/${id}`, {
        method: 'PUT',
        body: { api_key: key },
      });
      expect(res.status).toBe(201);
    }
    await moveSealed(['process-street', 'acct-key-victim'], ['process-street', 'acct-key-target']);
    const res = await t.broker.api('/internal/connections/process-street/acct-key-target/token');
    expect(res.body.code).toBe('decryption_failed');
    expectNoSecretOf('key-victim-5', res.body);
  });

  it('refuses a ciphertext with one bit flipped, and one relabelled with the other key id of the ring', async () => {
    await importTokens('jobber', 'acct-tamper', 'tamper-6');
    const original = await record('jobber', 'acct-tamper');
    const raw = Buffer.from(original.sealed!);
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    await t.client.set(sealedKey('jobber', 'acct-tamper'), raw);
    expect((await t.broker.api('/internal/connections/jobber/acct-tamper/token')).body.code).toBe(
      'decryption_failed',
    );

    await t.client.set(sealedKey('jobber', 'acct-tamper'), original.sealed!);
    await t.client.hset(conn('jobber', 'acct-tamper'), {
      key_id: original.hash.key_id === 'k1' ? 'k2' : 'k1',
    });
    expect((await t.broker.api('/internal/connections/jobber/acct-tamper/token')).body.code).toBe(
      'decryption_failed',
    );

    await t.client.hset(conn('jobber', 'acct-tamper'), { key_id: original.hash.key_id! });
    expect((await t.broker.api('/internal/connections/jobber/acct-tamper/token')).body.access_token).toBe(
      'at-tamper-6',
    );
  });
});
