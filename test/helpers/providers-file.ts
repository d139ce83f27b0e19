import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * PROVIDERS_FILE files (docs/configuration.md) for the describe block this is called in: `write`
 * puts `{ providers }` in a fresh temporary folder and answers the file's path; afterAll removes
 * every folder it made.
 */
export function useProvidersFiles(prefix: string): { write(providers: unknown[]): string } {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    write(providers) {
      const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      dirs.push(dir);
      const file = join(dir, 'providers.json');
      writeFileSync(file, JSON.stringify({ providers }));
      return file;
    },
  };
}

/** The value of a hidden form field in `html` (the API-key form's `flow`, `csrf` …); throws where there is none. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html);
  if (!match) throw new Error(`no hidden ${name} field in the page`);
  return match[1]!;
}
