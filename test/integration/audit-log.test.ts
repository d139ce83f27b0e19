import { AUDIT_SHARDS, shardFor } from '../../src/audit/audit-log';
import { rekey } from '../../src/cli/keys-commands';
import { createCliContext } from '../../src/cli/cli-context';
import { loadConfig } from '../../src/config/load-config';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import {
  TEST_INTERNAL_KEY,
  TestBroker,
  baseEnv,
  providerEnv,
  startTestBroker,
} from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener } from '../helpers/flow-steps';
import { keyActor, writeServiceKeysFile } from '../helpers/service-keys';
import { until } from '../helpers/until';

const BILLING = 'billing-key-0123456789abcdef0123456789abcd';
const ONBOARDING = 'onboarding-key-0123456789abcdef0123456789';
const ADMIN_ACTOR = keyActor(TEST_INTERNAL_KEY);

interface Entry {
  id: string;
  at: string;
  actor: string;
  action: string;
  provider: string | null;
  connection_id: string | null;
  status: number;
  request_id: string | null;
  ip: string | null;
}

describe('the audit log: one entry per hand-out, connect, import, delete, rekey and refusal', () => {
  const serviceKeysFile = writeServiceKeysFile([
    { name: 'billing', keys: [BILLING], providers: ['jobber'], actions: ['token', 'read'] },
    {
      name: 'onboarding',
      keys: [ONBOARDING],
      providers: ['jobber'],
      actions: ['connect', 'write', 'delete'],
    },
  ]);
  const t = useBrokerOnRedis(
    (fakeUrl) => ({
      ...providerEnv('bexio', fakeUrl),
      SERVICE_KEYS_FILE: serviceKeysFile,
      AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    }),
    { expiresIn: 3600 },
  );
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  /** Every token and key this file hands to the broker or gets from it: none may sit in the log. */
  const secrets = new Set<string>([TEST_INTERNAL_KEY, BILLING, ONBOARDING]);

  const importAs = async (key: string, provider: string, id: string, expect201 = true) => {
    const body = {
      access_token: `at-${provider}-${id}`,
      refresh_token: `rt-${provider}-${id}`,
      expires_in: 3600,
    };
    secrets.add(body.access_token).add(body.refresh_token);
    const res = await t.broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body,
      headers: as(key),
    });
    if (expect201) expect(res.status).toBe(201);
    return res;
  };

  /**
   * A connection's entries, newest first, once there are `count` of them: entries of changes are
   * written just after the answer, so a read right after it may come first. Then a moment more,
   * so that an extra entry would show.
   */
  const entriesOf = async (provider: string, id: string, count: number): Promise<Entry[]> => {
    const read = async () => {
      const res = await t.broker.api(`/internal/audit?provider=${provider}&connection_id=${id}&limit=1000`);
      expect(res.status).toBe(200);
      return res.body.entries as Entry[];
    };
    await until(async () => ((await read()).length >= count ? true : undefined), 10_000).catch(
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 100));
    return read();
  };

  /** All entries of all shards, straight from Redis, newest first. */
  const rawLog = async (prefix = 'ob:', client = t.client) => {
    const all: Array<{ id: string; shard: number; fields: string[] }> = [];
    for (let shard = 0; shard < AUDIT_SHARDS; shard++) {
      const entries = (await client.xrange(`${prefix}{audit:${shard}}`, '-', '+')) as Array<
        [string, string[]]
      >;
      for (const [id, fields] of entries) all.push({ id, shard, fields });
    }
    const key = (e: { id: string; shard: number }) => {
      const [ms, seq] = e.id.split('-').map(BigInt);
      return [ms!, seq!, BigInt(e.shard)];
    };
    return all.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! > y[i]! ? -1 : 1;
      return 0;
    });
  };

  it('a token handed out (fast path and router) is one entry each, with the service as actor', async () => {
    await importAs(TEST_INTERNAL_KEY, 'jobber', 'ev-token');
    const fast = await t.broker.api('/internal/connections/jobber/ev-token/token', {
      headers: { ...as(BILLING), 'x-request-id': 'req-fast-1' },
    });
    expect(fast.status).toBe(200);
    const routed = await t.broker.api('/internal/connections/jobber/ev-token/token/', {
      headers: as(BILLING),
    });
    expect(routed.status).toBe(200);
    // A request that hands nothing out leaves no hand-out entry.
    expect(
      (await t.broker.api('/internal/connections/jobber/ev-missing/token', { headers: as(BILLING) })).status,
    ).toBe(404);
    const entries = await entriesOf('jobber', 'ev-token', 3);
    expect(entries.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['token', 'billing', 200],
      ['token', 'billing', 200],
      ['import', ADMIN_ACTOR, 201],
    ]);
    expect(entries[1]).toMatchObject({
      request_id: 'req-fast-1',
      provider: 'jobber',
      connection_id: 'ev-token',
    });
    expect(entries[1]!.ip).toMatch(/127\.0\.0\.1/);
    expect(Date.parse(entries[0]!.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(await entriesOf('jobber', 'ev-missing', 0)).toEqual([]);
  });

  it('a completed connect is one entry whose actor is the service that asked for the link', async () => {
    const link = await t.broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'jobber', connection_id: 'ev-connect' },
      headers: as(ONBOARDING),
    });
    expect(link.status).toBe(201);
    const browser = new TestBrowser();
    const auth = await browser.get(onListener(t.broker, link.body.url));
    const state = new URL(auth.location!).searchParams.get('state')!;
    const callback = await browser.get(callbackUrl(t.broker, 'jobber', { code: 'code-ev-connect', state }));
    expect(callback.status).toBe(200);
    for (const issued of t.fake.issued) {
      secrets.add(issued.access_token);
      if (issued.refresh_token) secrets.add(issued.refresh_token);
    }
    const entries = await entriesOf('jobber', 'ev-connect', 1);
    expect(entries.map((e) => [e.action, e.actor, e.status])).toEqual([['connect', 'onboarding', 200]]);
  });

  it('an import and a delete are one entry each; a delete of nothing is none', async () => {
    await importAs(ONBOARDING, 'jobber', 'ev-change');
    const replaced = await importAs(ONBOARDING, 'jobber', 'ev-change', false);
    expect(replaced.status).toBe(200);
    expect(
      (
        await t.broker.api('/internal/connections/jobber/ev-change', {
          method: 'DELETE',
          headers: as(ONBOARDING),
        })
      ).status,
    ).toBe(204);
    expect(
      (
        await t.broker.api('/internal/connections/jobber/ev-change', {
          method: 'DELETE',
          headers: as(ONBOARDING),
        })
      ).status,
    ).toBe(404);
    const entries = await entriesOf('jobber', 'ev-change', 3);
    expect(entries.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['delete', 'onboarding', 204],
      ['import', 'onboarding', 200],
      ['import', 'onboarding', 201],
    ]);
  });

  it('a 401 and a 403 are one entry each (actor unknown, and the service)', async () => {
    const wrong = 'a-wrong-key-0123456789abcdef0123456789';
    secrets.add(wrong);
    expect(
      (await t.broker.api('/internal/connections/jobber/ev-401/token', { headers: as(wrong) })).status,
    ).toBe(401);
    expect(
      (await t.broker.api('/internal/connections/bexio/ev-403/token', { headers: as(BILLING) })).status,
    ).toBe(403);
    expect((await entriesOf('jobber', 'ev-401', 1)).map((e) => [e.action, e.actor, e.status])).toEqual([
      ['unauthorized', 'unknown', 401],
    ]);
    expect((await entriesOf('bexio', 'ev-403', 1)).map((e) => [e.action, e.actor, e.status])).toEqual([
      ['forbidden', 'billing', 403],
    ]);
  });

  it('a rekey by the CLI is one entry per re-sealed connection, actor cli', async () => {
    await importAs(TEST_INTERNAL_KEY, 'jobber', 'ev-rekey');
    const config = loadConfig({
      ...baseEnv(1),
      REDIS_URL: t.redis.url,
      TOKEN_ENCRYPTION_KEYS: `k2:${Buffer.alloc(32, 8).toString('base64')},k1:${Buffer.alloc(32, 7).toString('base64')}`,
      ...providerEnv('jobber', t.fake.url),
    });
    const ctx = await createCliContext(config);
    try {
      const report = await rekey(ctx);
      expect(report.remaining).toBe(0);
    } finally {
      await ctx.close();
    }
    expect((await entriesOf('jobber', 'ev-rekey', 2)).map((e) => [e.action, e.actor, e.status])).toEqual([
      ['rekey', 'cli', 200],
      ['import', ADMIN_ACTOR, 201],
    ]);
  });

  it('hands nothing out when the entry cannot be written (Redis refuses it), on both paths; other changes go on', async () => {
    await importAs(TEST_INTERNAL_KEY, 'jobber', 'ev-fail');
    await entriesOf('jobber', 'ev-fail', 1);
    const shardKey = `ob:{audit:${shardFor('jobber', 'ev-fail')}}`;
    const saved = (await t.client.xrange(shardKey, '-', '+')) as Array<[string, string[]]>;
    await t.client.del(shardKey);
    // A key of the wrong type where the stream should be: Redis answers WRONGTYPE to the XADD.
    await t.client.set(shardKey, 'not a stream');
    try {
      for (const path of [
        '/internal/connections/jobber/ev-fail/token',
        '/internal/connections/jobber/ev-fail/token/',
      ]) {
        const res = await t.broker.api(path, { headers: as(BILLING) });
        expect({ path, status: res.status, code: res.body.code }).toEqual({
          path,
          status: 503,
          code: 'store_unavailable',
        });
        expect(JSON.stringify(res.body)).not.toContain('at-jobber-ev-fail');
        expect(res.headers.get('retry-after')).toBe('1');
      }
      // An import is not a hand-out: it is made, and its lost entry is counted.
      const replaced = await importAs(TEST_INTERNAL_KEY, 'jobber', 'ev-fail', false);
      expect(replaced.status).toBe(200);
      // The import's entry fails just after its answer: wait for it to be counted.
      const metrics = await until(async () => {
        const text = await fetch(`${t.broker.internalUrl}/metrics`).then((r) => r.text());
        return /audit_write_failures_total\{kind="change"\}/.test(text) ? text : undefined;
      });
      expect(metrics).toMatch(/oauth_broker_audit_write_failures_total\{kind="hand_out"\} 2/);
      expect(metrics).toMatch(/oauth_broker_audit_write_failures_total\{kind="change"\} [1-9]/);
    } finally {
      await t.client.del(shardKey);
      for (const [, fields] of saved) await t.client.xadd(shardKey, '*', ...fields);
    }
    const again = await t.broker.api('/internal/connections/jobber/ev-fail/token', { headers: as(BILLING) });
    expect(again.status).toBe(200);
    expect((await entriesOf('jobber', 'ev-fail', 2)).map((e) => [e.action, e.status])).toEqual([
      ['token', 200],
      ['import', 201],
    ]);
  });

  it('pages newest first through every shard, and each filter keeps exactly its entries', async () => {
    for (let i = 0; i < 4; i++) await importAs(TEST_INTERNAL_KEY, 'jobber', `ev-page-${i}`);
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 4; i++) {
        const key = round % 2 === 0 ? BILLING : TEST_INTERNAL_KEY;
        expect(
          (await t.broker.api(`/internal/connections/jobber/ev-page-${i}/token`, { headers: as(key) }))
            .status,
        ).toBe(200);
      }
    await entriesOf('jobber', 'ev-page-3', 4);
    const raw = await rawLog();
    const expected = raw.map((e) => `${e.id}-${e.shard}`);
    const paged: Entry[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.broker.api(`/internal/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.entries.length).toBeLessThanOrEqual(7);
      paged.push(...res.body.entries);
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(paged.map((e) => e.id)).toEqual(expected);
    const times = paged.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const filters: Array<[string, (e: Entry) => boolean]> = [
      ['actor=billing', (e) => e.actor === 'billing'],
      [`actor=${ADMIN_ACTOR}`, (e) => e.actor === ADMIN_ACTOR],
      ['provider=bexio', (e) => e.provider === 'bexio'],
      ['action=token', (e) => e.action === 'token'],
      ['connection_id=ev-page-2', (e) => e.connection_id === 'ev-page-2'],
      [
        'actor=billing&action=token&provider=jobber&connection_id=ev-page-1',
        (e) => e.actor === 'billing' && e.connection_id === 'ev-page-1' && e.action === 'token',
      ],
    ];
    for (const [query, keep] of filters) {
      const got: Entry[] = [];
      cursor = null;
      do {
        const res = await t.broker.api(
          `/internal/audit?${query}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        );
        got.push(...res.body.entries);
        cursor = res.body.next_cursor;
      } while (cursor);
      const want = paged.filter(keep).map((e) => e.id);
      expect({ query, ids: got.map((e) => e.id) }).toEqual({ query, ids: want });
      expect(want.length).toBeGreaterThan(0);
    }

    // since/until are inclusive bounds on `at`.
    const middle = paged[Math.floor(paged.length / 2)]!;
    const since = await t.broker.api(`/internal/audit?since=${middle.at}&limit=1000`);
    expect(since.body.entries.map((e: Entry) => e.id)).toEqual(
      paged.filter((e) => e.at >= middle.at).map((e) => e.id),
    );
    const until = await t.broker.api(`/internal/audit?until=${middle.at}&limit=1000`);
    expect(until.body.entries.map((e: Entry) => e.id)).toEqual(
      paged.filter((e) => e.at <= middle.at).map((e) => e.id),
    );
    expect((await t.broker.api('/internal/audit?action=stolen')).status).toBe(400);
    expect((await t.broker.api('/internal/audit?cursor=nope')).status).toBe(400);
  });

  it('holds none of the tokens or keys it saw (the whole stream, grepped)', async () => {
    const raw = await rawLog();
    expect(raw.length).toBeGreaterThan(20);
    const text = JSON.stringify(raw);
    expect(secrets.size).toBeGreaterThan(10);
    for (const secret of secrets)
      expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
  });

  describe('with AUDIT=off, and with a small AUDIT_MAX_ENTRIES', () => {
    let off: TestBroker;
    let capped: TestBroker;

    beforeAll(async () => {
      const env = {
        REDIS_URL: t.redis.url,
        ...providerEnv('jobber', t.fake.url),
        AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
      };
      off = await startTestBroker({ ...env, REDIS_KEY_PREFIX: 'off:', AUDIT: 'off' });
      capped = await startTestBroker({ ...env, REDIS_KEY_PREFIX: 'cap:', AUDIT_MAX_ENTRIES: '32' });
    });

    afterAll(async () => {
      await off?.close();
      await capped?.close();
    });

    it('AUDIT=off writes nothing, whatever happens', async () => {
      expect(
        (
          await off.api('/internal/connections/jobber/off-1', {
            method: 'PUT',
            body: { access_token: 'at-off' },
          })
        ).status,
      ).toBe(201);
      expect((await off.api('/internal/connections/jobber/off-1/token')).status).toBe(200);
      expect(
        (await off.api('/internal/connections/jobber/off-1/token', { headers: as('wrong-key-0123456789') }))
          .status,
      ).toBe(401);
      expect((await off.api('/internal/connections/jobber/off-1', { method: 'DELETE' })).status).toBe(204);
      const keys = await t.client.keys('off:*');
      expect(keys.filter((k) => k.includes('audit'))).toEqual([]);
      expect((await off.api('/internal/audit')).body).toEqual({ entries: [], next_cursor: null });
    });

    it('keeps at most AUDIT_MAX_ENTRIES entries, the newest', async () => {
      for (let i = 0; i < 8; i++)
        expect(
          (
            await capped.api(`/internal/connections/jobber/cap-${i}`, {
              method: 'PUT',
              body: { access_token: `at-cap-${i}` },
            })
          ).status,
        ).toBe(201);
      for (let round = 0; round < 10; round++)
        for (let i = 0; i < 8; i++)
          expect(
            (
              await capped.api(`/internal/connections/jobber/cap-${i}/token`, {
                headers: { 'x-request-id': `cap-${round}-${i}` },
              })
            ).status,
          ).toBe(200);
      let total = 0;
      for (let shard = 0; shard < AUDIT_SHARDS; shard++) total += await t.client.xlen(`cap:{audit:${shard}}`);
      expect(total).toBeGreaterThan(0);
      expect(total).toBeLessThanOrEqual(32);
      const newest = await capped.api('/internal/audit?limit=1');
      expect(newest.body.entries[0]).toMatchObject({ action: 'token', request_id: 'cap-9-7' });
    });
  });
});
