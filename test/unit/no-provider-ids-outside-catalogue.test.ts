import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { BUILT_IN_PROVIDERS } from '../../src/providers/catalogue';

/**
 * Providers are data (docs/architecture.md): code never asks which provider it talks to. So no built-in
 * provider id, nor its `<PROVIDER>_` variable prefix, may appear in a string of src/ outside
 * src/providers/, where the catalogue lives.
 */
const SRC = join(__dirname, '..', '..', 'src');
const CATALOGUE_DIR = join(SRC, 'providers');
const IDS = BUILT_IN_PROVIDERS.map((p) => p.id);

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One pattern per id: the id (any case) as a word inside a one-line quoted string, or its variable prefix. */
function patternsFor(id: string): RegExp[] {
  const word = `(?<![A-Za-z0-9_-])${escapeRegExp(id)}(?![A-Za-z0-9_-])`;
  const prefix = `\\b${escapeRegExp(id.toUpperCase().replace(/-/g, '_'))}_[A-Z_]+`;
  return ["'", '"', '`'].flatMap((q) => [
    new RegExp(`${q}[^${q}\\n]*${word}[^${q}\\n]*${q}`, 'i'),
    new RegExp(`${q}[^${q}\\n]*${prefix}[^${q}\\n]*${q}`),
  ]);
}

/** The code of a line without its comment: a `//` that starts the line or follows a space, and JSDoc lines. */
function codeOf(line: string): string {
  const trimmed = line.trim();
  if (trimmed.startsWith('*') || trimmed.startsWith('/*')) return '';
  return line.replace(/(^|\s)\/\/.*$/, '$1');
}

/** Each `file:line: text` of the source that names a provider id in a string. */
function findProviderIds(file: string, source: string): string[] {
  const hits: string[] = [];
  source.split('\n').forEach((line, index) => {
    const code = codeOf(line);
    for (const id of IDS) {
      if (patternsFor(id).some((p) => p.test(code)))
        hits.push(`${file}:${index + 1}: "${id}" in ${line.trim()}`);
    }
  });
  return hits;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return path === CATALOGUE_DIR ? [] : sourceFiles(path);
    return /\.(ts|js|mjs|cjs|json|html)$/.test(name) ? [path] : [];
  });
}

describe('provider ids stay in the catalogue', () => {
  it('knows the five built-in ids', () => {
    expect([...IDS].sort()).toEqual(['bexio', 'bonjoro', 'jobber', 'process-street', 'respond-io']);
  });

  it('finds a provider id written in code, and not in a comment', () => {
    expect(findProviderIds('x.ts', "if (provider.id === 'jobber') {")).toHaveLength(1);
    expect(findProviderIds('x.ts', 'const url = `/auth/process-street?session=${token}`;')).toHaveLength(1);
    expect(findProviderIds('x.ts', 'const name = "Respond-IO";')).toHaveLength(1);
    expect(findProviderIds('x.ts', "const v = env['BEXIO_CLIENT_ID'];")).toHaveLength(1);
    expect(findProviderIds('x.ts', "// unlike 'jobber', most providers send expires_in")).toHaveLength(0);
    expect(findProviderIds('x.ts', " * Jobber's tokens are JWTs.")).toHaveLength(0);
    expect(findProviderIds('x.ts', "const host = 'https://api.example.com'; // not bexio")).toHaveLength(0);
    expect(findProviderIds('x.ts', "const s = 'jobberish';")).toHaveLength(0);
  });

  it('has no provider id in any string of src/ outside src/providers/', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(20);
    const hits = files.flatMap((file) =>
      findProviderIds(relative(SRC, file).split(sep).join('/'), readFileSync(file, 'utf8')),
    );
    expect(hits).toEqual([]);
  });
});
