import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { TestBroker, providerEnv, startTestBroker } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { FakeProvider } from '../helpers/fake-provider';
import { callbackUrl, startFlow } from '../helpers/flow-steps';
import { TestRedis } from '../helpers/redis-server';
import { until } from '../helpers/until';

const P = 'ob:';

/** A webhook endpoint that keeps every event body it gets. */
async function startReceiver(): Promise<{ server: Server; url: string; events: any[] }> {
  const events: any[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      events.push(JSON.parse(raw));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, events };
}

describe('end users and tags: who a connection belongs to, and finding it again', () => {
  let redis: TestRedis;
  let inspect: Redis;
  let fake: FakeProvider;
  let broker: TestBroker;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    redis = await TestRedis.start();
    inspect = redis.client();
    fake = await FakeProvider.start();
    receiver = await startReceiver();
    broker = await startTestBroker({
      REDIS_URL: redis.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: 'webhook-secret-for-tests-0123456789abcdef',
      ...providerEnv('jobber', fake.url),
      ...providerEnv('bonjoro', fake.url),
    });
    broker.broker.webhooks!.start();
  });

  afterAll(async () => {
    await broker.close();
    receiver.server.closeAllConnections();
    await new Promise<void>((r) => receiver.server.close(() => r()));
    inspect.disconnect();
    await fake.close();
    await redis.close();
  });

  /** The real browser journey with a connect session that names `extra` (end_user, tags). */
  async function connectVia(provider: string, id: string, extra: Record<string, unknown>): Promise<void> {
    const browser = new TestBrowser();
    const flow = await startFlow(broker, browser, provider, id, extra);
    const callback = await browser.get(
      callbackUrl(broker, provider, { code: `code-${id}`, state: flow.state }),
    );
    expect(callback.status).toBe(200);
  }

  async function importWith(provider: string, id: string, extra: Record<string, unknown> = {}) {
    return broker.api(`/internal/connections/${provider}/${id}`, {
      method: 'PUT',
      body: { access_token: `at-${id}`, refresh_token: `rt-${id}`, expires_in: 3600, ...extra },
    });
  }

  async function listAll(query: string, limit = 1000): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await broker.api(
        `/internal/connections?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.status).toBe(200);
      seen.push(...res.body.connections.map((c: any) => `${c.provider}:${c.connection_id}`));
      cursor = res.body.next_cursor;
    } while (cursor);
    return seen;
  }

  const inIndex = async (key: string, member: string) =>
    (await inspect.zscore(`${P}${key}`, member)) !== null;

  describe('round trips', () => {
    it('a connection made without an owner shows end_user null and tags {}, and adds no owner key', async () => {
      expect((await importWith('jobber', 'plain-1')).status).toBe(201);
      const meta = await broker.api('/internal/connections/jobber/plain-1');
      expect(meta.body.end_user).toBeNull();
      expect(meta.body.tags).toEqual({});
      const hash = await inspect.hgetall(`${P}{jobber:plain-1}:conn`);
      expect(hash).not.toHaveProperty('end_user');
      expect(hash).not.toHaveProperty('tags');
    });

    it('a connect flow stores what its connect session named, when the flow completes', async () => {
      const endUser = {
        id: 'u_7',
        email: 'u7@example.com',
        display_name: 'User Seven',
        organization_id: 'org_42',
      };
      await connectVia('jobber', 'flow-1', { end_user: endUser, tags: { org: '42', plan: 'pro' } });
      const meta = await broker.api('/internal/connections/jobber/flow-1');
      expect(meta.status).toBe(200);
      expect(meta.body.end_user).toEqual(endUser);
      expect(meta.body.tags).toEqual({ org: '42', plan: 'pro' });
      // Compact in the hash, and in each index of its owner.
      const [storedUser, storedTags] = await inspect.hmget(`${P}{jobber:flow-1}:conn`, 'end_user', 'tags');
      expect(JSON.parse(storedUser!)).toEqual(endUser);
      expect(storedTags).toBe('{"org":"42","plan":"pro"}');
      expect(await inIndex('eu:u_7', 'jobber:flow-1')).toBe(true);
      expect(await inIndex('tag:org:42', 'jobber:flow-1')).toBe(true);
      expect(await inIndex('tag:plan:pro', 'jobber:flow-1')).toBe(true);
    });

    it('a connect session whose flow never completes stores nothing', async () => {
      const browser = new TestBrowser();
      await startFlow(broker, browser, 'jobber', 'flow-abandoned', { end_user: { id: 'u_gone' } });
      expect(await inspect.exists(`${P}eu:u_gone`)).toBe(0);
      expect((await broker.api('/internal/connections/jobber/flow-abandoned')).status).toBe(404);
    });

    it('a reconnect keeps the owner unless its session names it again; what it names replaces', async () => {
      await connectVia('jobber', 'flow-2', { end_user: { id: 'u_8' }, tags: { org: '1' } });
      await connectVia('jobber', 'flow-2', {});
      let meta = await broker.api('/internal/connections/jobber/flow-2');
      expect(meta.body.end_user).toEqual({ id: 'u_8' });
      expect(meta.body.tags).toEqual({ org: '1' });

      await connectVia('jobber', 'flow-2', { tags: { org: '2' } });
      meta = await broker.api('/internal/connections/jobber/flow-2');
      expect(meta.body.end_user).toEqual({ id: 'u_8' });
      expect(meta.body.tags).toEqual({ org: '2' });
      expect(await inIndex('tag:org:1', 'jobber:flow-2')).toBe(false);
      expect(await inIndex('tag:org:2', 'jobber:flow-2')).toBe(true);
      expect(await inIndex('eu:u_8', 'jobber:flow-2')).toBe(true);
    });

    it('an import stores the owner, a re-import keeps it unless it names it, and null clears it', async () => {
      const first = await importWith('bonjoro', 'imp-1', { end_user: { id: 'u_9' }, tags: { team: 'a' } });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ end_user: { id: 'u_9' }, tags: { team: 'a' } });

      const again = await importWith('bonjoro', 'imp-1');
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ end_user: { id: 'u_9' }, tags: { team: 'a' } });

      const cleared = await importWith('bonjoro', 'imp-1', { end_user: null });
      expect(cleared.status).toBe(200);
      expect(cleared.body.end_user).toBeNull();
      expect(cleared.body.tags).toEqual({ team: 'a' });
      expect(await inIndex('eu:u_9', 'bonjoro:imp-1')).toBe(false);
      expect(await inspect.exists(`${P}eu:u_9`)).toBe(0);
      expect(await inspect.hexists(`${P}{bonjoro:imp-1}:conn`, 'end_user')).toBe(0);
    });

    it('PATCH replaces what it names, answers the metadata, and moves the index entries', async () => {
      await importWith('bonjoro', 'pat-1', { end_user: { id: 'u_10' }, tags: { a: '1', b: '2' } });
      const patched = await broker.api('/internal/connections/bonjoro/pat-1', {
        method: 'PATCH',
        body: { tags: { b: '3' } },
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({
        provider: 'bonjoro',
        connection_id: 'pat-1',
        end_user: { id: 'u_10' },
        tags: { b: '3' },
        status: 'active',
      });
      expect(await inIndex('tag:a:1', 'bonjoro:pat-1')).toBe(false);
      expect(await inIndex('tag:b:2', 'bonjoro:pat-1')).toBe(false);
      expect(await inIndex('tag:b:3', 'bonjoro:pat-1')).toBe(true);

      const user = await broker.api('/internal/connections/bonjoro/pat-1', {
        method: 'PATCH',
        body: { end_user: { id: 'u_11', email: 'x@example.com' } },
      });
      expect(user.body.end_user).toEqual({ id: 'u_11', email: 'x@example.com' });
      expect(user.body.tags).toEqual({ b: '3' });
      expect(await inIndex('eu:u_10', 'bonjoro:pat-1')).toBe(false);
      expect(await inIndex('eu:u_11', 'bonjoro:pat-1')).toBe(true);

      const clear = await broker.api('/internal/connections/bonjoro/pat-1', {
        method: 'PATCH',
        body: { end_user: null, tags: {} },
      });
      expect(clear.body).toMatchObject({ end_user: null, tags: {} });
      expect(await inspect.exists(`${P}eu:u_11`, `${P}tag:b:3`)).toBe(0);

      // The tokens were not touched by any of it.
      const token = await broker.api('/internal/connections/bonjoro/pat-1/token');
      expect(token.body.access_token).toBe('at-pat-1');
    });

    it('PATCH of an unknown connection is 404 connection_not_found and creates nothing', async () => {
      const res = await broker.api('/internal/connections/bonjoro/nobody', {
        method: 'PATCH',
        body: { end_user: { id: 'u_ghost' } },
      });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('connection_not_found');
      expect(await inspect.exists(`${P}{bonjoro:nobody}:conn`, `${P}eu:u_ghost`)).toBe(0);
    });

    it('DELETE removes the connection from every owner index, leaving no empty index behind', async () => {
      await importWith('jobber', 'del-1', { end_user: { id: 'u_del' }, tags: { org: 'del', x: 'y' } });
      await importWith('jobber', 'del-2', { end_user: { id: 'u_del' }, tags: { org: 'del' } });
      expect((await broker.api('/internal/connections/jobber/del-1', { method: 'DELETE' })).status).toBe(204);
      expect(await inIndex('eu:u_del', 'jobber:del-1')).toBe(false);
      expect(await inIndex('tag:org:del', 'jobber:del-1')).toBe(false);
      expect(await inspect.exists(`${P}tag:x:y`)).toBe(0);
      expect(await inspect.zrange(`${P}eu:u_del`, 0, -1)).toEqual(['jobber:del-2']);
      await broker.api('/internal/connections/jobber/del-2', { method: 'DELETE' });
      expect(await inspect.exists(`${P}eu:u_del`, `${P}tag:org:del`)).toBe(0);
      expect(await listAll('end_user_id=u_del')).toEqual([]);
    });

    it('webhook events (created, deleted, reauthorization_required) carry the end_user and tags', async () => {
      await importWith('jobber', 'hook-1', { end_user: { id: 'u_hook' }, tags: { org: 'h' } });
      await broker.api('/internal/connections/jobber/hook-1', { method: 'DELETE' });
      const of = (type: string) =>
        receiver.events.find((e) => e.type === type && e.connection_id === 'hook-1');
      await until(() => (of('connection.created') && of('connection.deleted') ? true : undefined));
      for (const type of ['connection.created', 'connection.deleted'])
        expect(of(type)).toMatchObject({ end_user: { id: 'u_hook' }, tags: { org: 'h' } });
      // A refresh the provider refuses: the reauthorization event carries the owner too.
      await importWith('jobber', 'hook-3', { end_user: { id: 'u_hook3' }, tags: { org: 'h3' } });
      fake.onToken((_req, res) => void res.status(400).json({ error: 'invalid_grant' }));
      try {
        const refused = await broker.api('/internal/connections/jobber/hook-3/token?force_refresh=true');
        expect(refused.status).toBe(409);
      } finally {
        fake.onToken(undefined);
      }
      const reauth = await until(() =>
        receiver.events.find(
          (e) => e.type === 'connection.reauthorization_required' && e.connection_id === 'hook-3',
        ),
      );
      expect(reauth).toMatchObject({ end_user: { id: 'u_hook3' }, tags: { org: 'h3' } });
      await importWith('jobber', 'hook-2');
      await until(() => receiver.events.find((e) => e.connection_id === 'hook-2'));
      expect(receiver.events.find((e) => e.connection_id === 'hook-2')).toMatchObject({
        end_user: null,
        tags: {},
      });
    });
  });

  describe('filtered listing', () => {
    /** 40 connections over two providers, 5 end users, 3 organisations and 2 plans. */
    const dataset: Array<{ provider: string; id: string; user: string; org: string; plan: string }> = [];
    for (let i = 0; i < 40; i++)
      dataset.push({
        provider: i % 3 === 0 ? 'bonjoro' : 'jobber',
        id: `ds-${String(i).padStart(2, '0')}`,
        user: `ds_u${i % 5}`,
        org: `o${i % 3}`,
        plan: i % 4 === 0 ? 'free' : 'pro',
      });

    beforeAll(async () => {
      for (const c of dataset)
        await importWith(c.provider, c.id, { end_user: { id: c.user }, tags: { org: c.org, plan: c.plan } });
    });

    const expected = (pick: (c: (typeof dataset)[number]) => boolean) =>
      dataset
        .filter(pick)
        .map((c) => `${c.provider}:${c.id}`)
        .sort();

    it.each([
      ['end_user_id alone', 'end_user_id=ds_u2', (c: any) => c.user === 'ds_u2'],
      ['one tag alone', 'tag=org:o1', (c: any) => c.org === 'o1'],
      ['two tags', 'tag=org:o1&tag=plan:pro', (c: any) => c.org === 'o1' && c.plan === 'pro'],
      [
        'end user and tag',
        'end_user_id=ds_u3&tag=plan:free',
        (c: any) => c.user === 'ds_u3' && c.plan === 'free',
      ],
      [
        'provider and end user',
        'provider=bonjoro&end_user_id=ds_u0',
        (c: any) => c.provider === 'bonjoro' && c.user === 'ds_u0',
      ],
      [
        'provider, end user and two tags',
        'provider=jobber&end_user_id=ds_u1&tag=org:o2&tag=plan:pro',
        (c: any) => c.provider === 'jobber' && c.user === 'ds_u1' && c.org === 'o2' && c.plan === 'pro',
      ],
    ])('%s: exactly the matches, in listing order, on every page size', async (_name, query, pick) => {
      const want = expected(pick);
      expect(want.length).toBeGreaterThan(0);
      for (const limit of [1, 3, 1000]) expect(await listAll(query, limit)).toEqual(want);
    });

    it('no match, an unknown end user, and two values of one tag key answer an empty page', async () => {
      for (const q of [
        'end_user_id=nobody',
        'tag=org:none',
        'tag=org:o1&tag=org:o2',
        'end_user_id=ds_u0&tag=org:o1&tag=plan:none',
      ])
        expect(await broker.api(`/internal/connections?${q}`)).toMatchObject({
          status: 200,
          body: { connections: [], next_cursor: null },
        });
    });

    it('answers the same metadata shape as the plain listing', async () => {
      const filtered = await broker.api('/internal/connections?end_user_id=ds_u4&limit=1');
      const plain = await broker.api('/internal/connections?limit=1000');
      const first = filtered.body.connections[0];
      const same = plain.body.connections.find(
        (c: any) => c.provider === first.provider && c.connection_id === first.connection_id,
      );
      expect(first).toEqual(same);
      expect(Object.keys(first).sort()).toEqual(Object.keys(same).sort());
    });

    it('the last page answers next_cursor null', async () => {
      const want = expected((c) => c.user === 'ds_u2');
      const res = await broker.api(`/internal/connections?end_user_id=ds_u2&limit=${want.length}`);
      expect(res.body.connections).toHaveLength(want.length);
      expect(res.body.next_cursor).toBeNull();
    });

    it('pages through filtered results while connections are added and deleted', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let round = 0;
      const added: string[] = [];
      const deleted: string[] = [];
      do {
        const res = await broker.api(
          `/internal/connections?tag=org:o0&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.status).toBe(200);
        seen.push(...res.body.connections.map((c: any) => `${c.provider}:${c.connection_id}`));
        cursor = res.body.next_cursor;
        round++;
        if (round === 2) {
          // One ahead of the cursor, one behind it; one matching connection ahead is deleted.
          await importWith('jobber', 'ds-zz-added', { tags: { org: 'o0' } });
          await importWith('bonjoro', 'ds-00-behind', { tags: { org: 'o0' } });
          added.push('jobber:ds-zz-added');
          const ahead = expected((c) => c.org === 'o0').filter((m) => !seen.includes(m));
          const victim = ahead[ahead.length - 2]!;
          const [provider, id] = victim.split(':');
          await broker.api(`/internal/connections/${provider}/${id}`, { method: 'DELETE' });
          deleted.push(victim);
        }
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual([...seen].sort());
      for (const m of expected((c) => c.org === 'o0')) if (!deleted.includes(m)) expect(seen).toContain(m);
      for (const m of deleted) expect(seen).not.toContain(m);
      for (const m of added) expect(seen).toContain(m);
    });
  });

  describe('crash safety', () => {
    it('an entry whose record does not match (a crash between index and record writes) is never listed, and is healed', async () => {
      await importWith('jobber', 'crash-1', { end_user: { id: 'u_crash' } });
      // As if a PATCH crashed after adding its entries and before writing the record, and a
      // delete crashed after removing the record and before removing its entries.
      await inspect.zadd(`${P}eu:u_crash`, 0, 'jobber:crash-0-no-record');
      await inspect.zadd(`${P}tag:org:crash`, 0, 'jobber:crash-1');
      expect(await listAll('end_user_id=u_crash')).toEqual(['jobber:crash-1']);
      expect(await listAll('tag=org:crash')).toEqual([]);
      await until(async () => ((await inspect.exists(`${P}tag:org:crash`)) === 0 ? true : undefined));
      await until(async () => ((await inIndex('eu:u_crash', 'jobber:crash-0-no-record')) ? undefined : true));
      expect(await inIndex('eu:u_crash', 'jobber:crash-1')).toBe(true);
    });
  });

  describe('repair journal', () => {
    it('writes and deletes leave no journal entry behind once done', async () => {
      await importWith('jobber', 'jr-1', { end_user: { id: 'u_jr' }, tags: { org: 'jr' } });
      await broker.api('/internal/connections/jobber/jr-1', { method: 'PATCH', body: { tags: {} } });
      await broker.api('/internal/connections/jobber/jr-1', { method: 'DELETE' });
      expect(await inspect.exists(`${P}owner-repair`)).toBe(0);
    });

    it('the sweeper repairs what a crashed write left in an index no listing walks, once its grace is over', async () => {
      // As if a delete crashed after removing the record and before cleaning its entries.
      await inspect.zadd(`${P}eu:u_crashed`, 0, 'jobber:jr-gone');
      await inspect.zadd(`${P}tag:org:crashed`, 0, 'jobber:jr-gone');
      const old = Date.now() - 61_000;
      await inspect.zadd(
        `${P}owner-repair`,
        old,
        JSON.stringify(['jobber:jr-gone', `${P}eu:u_crashed`, 'n1']),
        Date.now(),
        JSON.stringify(['jobber:jr-gone', `${P}tag:org:crashed`, 'n2']),
      );
      await broker.broker.sweeper.sweepOnce();
      expect(await inspect.exists(`${P}eu:u_crashed`)).toBe(0);
      // A young entry may belong to a write still under way: left for a later sweep.
      expect(await inspect.zscore(`${P}tag:org:crashed`, 'jobber:jr-gone')).toBe('0');
      expect(await inspect.zcard(`${P}owner-repair`)).toBe(1);
      await inspect.zadd(
        `${P}owner-repair`,
        old,
        JSON.stringify(['jobber:jr-gone', `${P}tag:org:crashed`, 'n2']),
      );
      await broker.broker.sweeper.sweepOnce();
      expect(await inspect.exists(`${P}tag:org:crashed`, `${P}owner-repair`)).toBe(0);
    });
  });

  describe('bad input', () => {
    const badEndUsers: Array<[string, unknown, RegExp]> = [
      ['not an object', 'u_1', /end_user/],
      ['an array', [{ id: 'u' }], /end_user/],
      ['no id', { email: 'a@example.com' }, /end_user\.id/],
      ['an empty id', { id: '' }, /end_user\.id/],
      ['an id with a space', { id: 'u 1' }, /end_user\.id/],
      ['an id of 201 characters', { id: 'u'.repeat(201) }, /end_user\.id/],
      ['a numeric id', { id: 7 }, /end_user\.id/],
      ['an unknown field', { id: 'u', role: 'admin' }, /end_user/],
      ['a non-string email', { id: 'u', email: 5 }, /end_user\.email/],
      ['an empty display_name', { id: 'u', display_name: '' }, /end_user\.display_name/],
      [
        'an organization_id too long',
        { id: 'u', organization_id: 'o'.repeat(400) },
        /end_user\.organization_id/,
      ],
    ];
    const badTags: Array<[string, unknown, RegExp]> = [
      ['not an object', 'org:1', /tags/],
      ['an array', ['org'], /tags/],
      ['11 entries', Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])), /tags/],
      ['an upper-case key', { Org: '1' }, /tags/],
      ['a key with a colon', { 'a:b': '1' }, /tags/],
      ['a key of 65 characters', { ['k'.repeat(65)]: '1' }, /tags/],
      ['a number value', { org: 42 }, /tags\.org/],
      ['a null value', { org: null }, /tags\.org/],
      ['a value of 257 characters', { org: 'v'.repeat(257) }, /tags\.org/],
    ];

    const routes: Array<
      [string, (field: Record<string, unknown>) => Promise<{ status: number; body: any }>]
    > = [
      [
        'POST /internal/connect-sessions',
        (field) =>
          broker.api('/internal/connect-sessions', {
            method: 'POST',
            body: { provider: 'jobber', connection_id: 'bad-1', ...field },
          }),
      ],
      ['PUT', (field) => importWith('jobber', 'bad-1', field)],
      [
        'PATCH',
        (field) => broker.api('/internal/connections/jobber/plain-1', { method: 'PATCH', body: field }),
      ],
    ];

    it.each(routes)(
      '%s refuses each bad end_user and tags with 400 invalid_request naming the field',
      async (_route, send) => {
        for (const [why, value, names] of badEndUsers) {
          const res = await send({ end_user: value });
          expect([why, res.status, res.body.code]).toEqual([why, 400, 'invalid_request']);
          expect(res.body.detail).toMatch(names);
        }
        for (const [why, value, names] of badTags) {
          const res = await send({ tags: value });
          expect([why, res.status, res.body.code]).toEqual([why, 400, 'invalid_request']);
          expect(res.body.detail).toMatch(names);
        }
        // Nothing was stored by any of it.
        expect(await inspect.exists(`${P}{jobber:bad-1}:conn`)).toBe(0);
        expect((await broker.api('/internal/connections/jobber/plain-1')).body).toMatchObject({
          end_user: null,
          tags: {},
        });
      },
    );

    it('accepts the limits themselves: 10 tags, 64-character keys, 256-character and empty values, a 200-character id', async () => {
      const tags = Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`${i}`.padEnd(64, 'k'), 'v'.repeat(256)]),
      );
      tags['0'.padEnd(64, 'k')] = '';
      const res = await importWith('jobber', 'limits-1', {
        end_user: { id: 'A-z0._:@'.padEnd(200, 'x') },
        tags,
      });
      expect(res.status).toBe(201);
      expect(res.body.tags).toEqual(tags);
    });

    it('PATCH refuses a body that is not an object, and unknown fields', async () => {
      for (const body of ['[]', '"x"', '{"access_token":"a"}', '{"end_user":{"id":"u"},"status":"active"}']) {
        const res = await broker.api('/internal/connections/jobber/plain-1', { method: 'PATCH', body });
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('invalid_request');
      }
    });

    it('the listing refuses a bad end_user_id or tag filter', async () => {
      for (const q of [
        'end_user_id=u%201',
        `end_user_id=${'u'.repeat(201)}`,
        'end_user_id=a&end_user_id=b',
        'tag=org',
        'tag=Org:1',
        'tag=:1',
        `tag=org:${'v'.repeat(257)}`,
        Array.from({ length: 11 }, (_, i) => `tag=k${i}:v`).join('&'),
      ]) {
        const res = await broker.api(`/internal/connections?${q}`);
        expect([q, res.status, res.body.code]).toEqual([q, 400, 'invalid_request']);
      }
    });
  });
});
