import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/errors/broker-error';

/** docs/errors.md has a "what to do" for every code the broker answers, at its status. */
describe('docs/errors.md', () => {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `([a-z_]+)` +\| (\d{3})[^|]*\|([^|]+)\|([^|]+)\|\s*$/gm)].map((m) => [
      m[1]!,
      { status: Number(m[2]), what: m[3]!.trim(), todo: m[4]!.trim() },
    ]),
  );

  it.each(Object.entries(ERROR_CODES))('documents %s with its status and what to do', (code, { status }) => {
    const row = rows.get(code);
    expect(row).toBeDefined();
    expect(row!.status).toBe(status);
    expect(row!.todo.length).toBeGreaterThan(20);
  });
});
