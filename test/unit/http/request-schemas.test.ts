import { ownerChange } from '../../../src/http/parse-owner';
import { parseImport } from '../../../src/http/routes/parse-import';
import { InputCheck, parseInput } from '../../../src/http/schemas/parse-input';
import { AuditQuery, ListQuery, TokenQuery } from '../../../src/http/schemas/queries';
import { ConnectSessionRequest, ImportOwner, OwnerPatch } from '../../../src/http/schemas/requests';

/** The 400 detail a caller reads for `value` under `schema`, or the value. */
function detailOf(check: () => unknown): unknown {
  try {
    return check();
  } catch (error) {
    return (error as { code: string; detail: string }).code === 'invalid_request'
      ? `400 ${(error as { detail: string }).detail}`
      : error;
  }
}

/**
 * A body or query breaking several rules at once is answered with one detail: the one the checks
 * always reported first (the body's form and unknown fields, then field by field in order; of a
 * field, the rule about it as a whole before its parts; the rule between expires_at and
 * expires_in after the credentials' own).
 */
describe('request schemas: the detail reported', () => {
  it.each<[string, unknown, string]>([
    ['a list is no body', [], '400 The body must be a JSON object (Content-Type: application/json).'],
    [
      'an unknown field before a bad one',
      { provider: 5, connection_id: 'bad id', extra: 1 },
      '400 Unknown field `extra`.',
    ],
    [
      'fields in order',
      { provider: 'p', connection_id: 'bad id', scopes: 'x' },
      '400 `connection_id` must be 1-200 characters of A-Za-z0-9._:@-',
    ],
    [
      'an unknown end_user field before its bad id',
      { provider: 'p', connection_id: 'c', end_user: { id: 'bad id', x: 1 } },
      '400 `end_user` may hold only `id`, `email`, `display_name`, `organization_id`',
    ],
    [
      'the tag count before a tag’s key',
      {
        provider: 'p',
        connection_id: 'c',
        tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`K${i}`, 'v'])),
      },
      '400 `tags` may hold at most 10 entries',
    ],
    [
      'tag entries in order, key before value',
      { provider: 'p', connection_id: 'c', tags: { ok: 'v'.repeat(300), 'B<a>d': 'x' } },
      '400 `tags.ok` must be a string of at most 256 characters',
    ],
    [
      'a well-formed key is named, an ill-formed one never',
      { provider: 'p', connection_id: 'c', tags: { 'B<a>d': 5 } },
      '400 `tags` keys must be 1-64 characters of a-z0-9_.-',
    ],
  ])('connect session: %s', (_name, body, detail) => {
    expect(detailOf(() => parseInput(ConnectSessionRequest, body))).toBe(detail);
  });

  it('connect session: `provider` and the body’s form are checked before the lookups, the rest after', () => {
    const check = InputCheck.of(ConnectSessionRequest, { provider: 'p', connection_id: 'bad id' });
    expect(() => check.rejectIfAbout('provider')).not.toThrow();
    expect(detailOf(() => check.value())).toMatch(/^400 `connection_id`/);
    const unknown = InputCheck.of(ConnectSessionRequest, { provider: 'p', connection_id: 'c', x: 1 });
    expect(detailOf(() => unknown.rejectIfAbout('provider'))).toBe('400 Unknown field `x`.');
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'access_token first',
      { access_token: 5, expires_at: 'x', expires_in: 1 },
      '400 `access_token` must be a non-empty string of at most 16384 characters',
    ],
    ['required', { token_type: 'bearer' }, '400 `access_token` is required'],
    [
      'not both, before the instant’s form',
      { access_token: 'a', expires_at: 'x', expires_in: 1 },
      '400 give `expires_at` or `expires_in`, not both',
    ],
    [
      'not both, null counting as given',
      { access_token: 'a', expires_at: null, expires_in: 5 },
      '400 give `expires_at` or `expires_in`, not both',
    ],
    [
      'a space in a token',
      { access_token: 'a b' },
      '400 `access_token` must not hold a control character or a space',
    ],
    [
      'expires_in as words',
      { access_token: 'a', expires_in: 'soon' },
      '400 `expires_in` must be a number of seconds',
    ],
  ])('import (oauth2): %s', (_name, body, detail) => {
    expect(detailOf(() => parseImport(body, 'oauth2'))).toBe(detail);
  });

  it('import: the tokens as stored (expires_in from now, refresh_token null as none, Bearer by default)', () => {
    const now = 1_700_000_000_000;
    expect(
      parseImport({ access_token: 'a', refresh_token: null, expires_in: '60', scopes: ['x'] }, 'oauth2', now),
    ).toEqual({
      kind: 'oauth2',
      tokens: {
        access_token: 'a',
        refresh_token: undefined,
        token_type: 'Bearer',
        expires_at: now + 60_000,
        granted_scopes: ['x'],
      },
    });
    expect(detailOf(() => parseImport({}, 'api_key'))).toBe(
      '400 `api_key` is required for an api_key provider',
    );
  });

  it('owner fields: null clears, a null end_user text is left out, a field left out is not named', () => {
    expect(ownerChange(parseInput(OwnerPatch, { end_user: null, tags: null }))).toEqual({
      end_user: null,
      tags: {},
    });
    expect(
      ownerChange(parseInput(ImportOwner, { end_user: { id: 'u', email: null }, access_token: 'a' })),
    ).toEqual({
      end_user: { id: 'u' },
    });
    expect(detailOf(() => parseInput(OwnerPatch, { tags: {}, x: 1 }))).toBe('400 Unknown field `x`.');
  });

  it.each<[string, unknown, unknown, unknown]>([
    ['token', TokenQuery, { min_validity: ['1', '2'] }, '400 `min_validity` must be given once, as a string'],
    ['token', TokenQuery, { min_validity: '86401' }, '400 `min_validity` must be an integer from 0 to 86400'],
    ['token', TokenQuery, { force_refresh: 'yes' }, '400 `force_refresh` must be true or false'],
    [
      'token',
      TokenQuery,
      { min_validity: '0', force_refresh: 'true' },
      { min_validity: 0, force_refresh: true },
    ],
    ['listing', ListQuery, {}, { limit: 50 }],
    ['listing', ListQuery, { tag: Array(11).fill('Bad') }, '400 `tag` may be given at most 10 times'],
    [
      'listing',
      ListQuery,
      { tag: ['a:b', 'B:c'] },
      '400 `tag` must be `key:value`, the key 1-64 characters of a-z0-9_.-',
    ],
    ['listing', ListQuery, { tag: 'org:4:2', limit: '7' }, { limit: 7, tag: [['org', '4:2']] }],
    ['listing', ListQuery, { cursor: '!!', limit: '0' }, '400 `limit` must be an integer from 1 to 1000'],
    [
      'listing',
      ListQuery,
      { cursor: Buffer.from('jobber:c1').toString('base64url') },
      { limit: 50, cursor: 'jobber:c1' },
    ],
    [
      'audit',
      AuditQuery,
      { since: 'yesterday', action: 'nope' },
      '400 `action` must be one of token, proxy, connect, import, patch, delete, rekey, unauthorized, forbidden',
    ],
    ['audit', AuditQuery, { since: '2026-01-31' }, { since: Date.parse('2026-01-31'), limit: 50 }],
  ])('%s query %#', (_name, schema, query, expected) => {
    expect(detailOf(() => parseInput(schema as typeof TokenQuery, query))).toEqual(expected);
  });
});
