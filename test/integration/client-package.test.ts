import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const PACKAGE_DIR = join(ROOT, 'packages', 'client');

/** TypeScript's default lib files are parsed once for every program of this file (they are most of the work). */
const libCache = new Map<string, ts.SourceFile | undefined>();
function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    if (!fileName.includes('/typescript/lib/')) return read(fileName, languageVersion, ...rest);
    if (!libCache.has(fileName)) libCache.set(fileName, read(fileName, languageVersion, ...rest));
    return libCache.get(fileName);
  };
  return host;
}

/** What a service writes: every method of the API, typed; the @ts-expect-error lines prove the types are real. */
const USAGE_TS = `import { BrokerClient, BrokerProblemError } from '@oauth-broker/client';
import type { Connection, TokenAnswer } from '@oauth-broker/client';

export async function use(client: BrokerClient): Promise<string> {
  const token: TokenAnswer = await client.getToken('jobber', 'c1', { minValidity: 60 });
  if (token.auth_mode === 'oauth2') {
    const access: string = token.access_token;
    // @ts-expect-error expires_at is a string or null, never a number
    const wrong: number = token.expires_at;
    void access;
    void wrong;
  }
  const connection: Connection = await client.getConnection('jobber', 'c1');
  const session = await client.createConnectSession({ provider: 'jobber', connection_id: 'c1' });
  const page = await client.listConnections({ provider: 'jobber', limit: 10 });
  const providers = await client.listProviders();
  await client.importConnection('jobber', 'c1', { access_token: 'x', expires_in: 60 });
  await client.deleteConnection('jobber', 'c1');
  // @ts-expect-error getToken needs a connection id
  await client.getToken('jobber');
  try {
    await client.getToken('jobber', 'c1');
  } catch (error) {
    if (error instanceof BrokerProblemError) return error.code;
  }
  return [connection.status, session.url, page.next_cursor, providers.length].join();
}

export const client = new BrokerClient({ baseUrl: 'http://127.0.0.1:3001', apiKey: 'k' });
`;

/** The same journey at run time, from either module system; prints what it saw as JSON. */
function runScript(loader: string): string {
  return `${loader}
(async () => {
  const client = new BrokerClient({ baseUrl: process.env.BROKER_URL, apiKey: process.env.BROKER_KEY, retries: 0 });
  const providers = (await client.listProviders()).map((p) => p.id);
  const imported = await client.importConnection('jobber', 'pkg-' + process.env.FLAVOUR, {
    access_token: 'imported-' + process.env.FLAVOUR, refresh_token: 'r', expires_in: 3600,
  });
  const token = await client.getToken('jobber', 'pkg-' + process.env.FLAVOUR);
  const meta = await client.getConnection('jobber', 'pkg-' + process.env.FLAVOUR);
  let missing;
  try {
    await client.getConnection('jobber', 'nobody');
  } catch (error) {
    missing = { code: error.code, isProblem: error instanceof BrokerProblemError };
  }
  await client.deleteConnection('jobber', 'pkg-' + process.env.FLAVOUR);
  process.stdout.write(JSON.stringify({ providers, created: imported.created, token: token.access_token,
    status: meta.status, missing, exports: Object.keys(mod).sort() }));
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

describe('@oauth-broker/client as a service installs it: packed, installed, type-checked, run', () => {
  const t = useBrokerOnRedis({}, { expiresIn: 3600 });
  let project: string;
  let tarball: string;

  beforeAll(async () => {
    project = mkdtempSync(join(tmpdir(), 'ob-client-consumer-'));
    // npm pack runs the package's own prepack (its build), as a publish would: in a copy of the
    // package's folder (what git holds), so the build never rewrites packages/client/dist while
    // other test files' processes load it. The root's tsc is on PATH as npm run puts it there.
    const source = join(project, 'client-source');
    cpSync(PACKAGE_DIR, source, {
      recursive: true,
      filter: (from) => !/[/\\](dist|node_modules)$/.test(from),
    });
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', project], {
      cwd: source,
      timeout: 120_000,
      env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}${delimiter}${process.env.PATH}` },
    });
    tarball = join(project, (JSON.parse(stdout) as [{ filename: string }])[0].filename);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    // Offline: a package with no dependencies needs nothing from a registry.
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], {
      cwd: project,
      timeout: 120_000,
    });
  }, 240_000);

  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('packs built JavaScript and declarations only, small, with no runtime dependency', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.trim().split('\n').sort();
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/esm/index.mjs');
    expect(files).toContain('package/esm/index.d.mts');
    expect(files).toContain('package/README.md');
    for (const file of files)
      expect(file).toMatch(
        /^package\/(package\.json|README\.md|LICENSE|dist\/[\w-]+\.(js|d\.ts)|esm\/index\.(mjs|d\.mts))$/,
      );
    expect(statSync(tarball).size).toBeLessThan(20_000);

    const installed = join(project, 'node_modules');
    expect(readdirSync(installed).filter((d) => !d.startsWith('.'))).toEqual(['@oauth-broker']);
    const manifest = JSON.parse(
      readFileSync(join(installed, '@oauth-broker', 'client', 'package.json'), 'utf8'),
    );
    expect(manifest.dependencies ?? {}).toEqual({});
  });

  it.each([
    ['node16', ts.ModuleKind.Node16, ts.ModuleResolutionKind.Node16, ['use.mts', 'use.cts']],
    ['nodenext', ts.ModuleKind.NodeNext, ts.ModuleResolutionKind.NodeNext, ['use.mts', 'use.cts']],
    ['bundler', ts.ModuleKind.ESNext, ts.ModuleResolutionKind.Bundler, ['use.ts']],
    ['node', ts.ModuleKind.CommonJS, ts.ModuleResolutionKind.Node10, ['use.ts']],
  ])('type-checks under moduleResolution %s', (name, module, moduleResolution, files) => {
    const dir = join(project, `tsc-${name}`);
    mkdirSync(dir, { recursive: true });
    for (const file of files) writeFileSync(join(dir, file), USAGE_TS);
    // The root's TypeScript, as tsc would run it; no `lib`: the default one carries fetch's types,
    // as @types/node does in a Node service. No skipLibCheck: the package's declarations are checked.
    const options: ts.CompilerOptions = {
      module,
      moduleResolution,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      types: [],
    };
    const program = ts.createProgram({
      rootNames: files.map((f) => join(dir, f)),
      options,
      host: cachingHost(options),
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
    // The package's own declarations were what the checker read, not a stray copy.
    expect(
      program.getSourceFiles().some((f) => f.fileName.includes('node_modules/@oauth-broker/client/')),
    ).toBe(true);
  });

  it.each([
    [
      'ESM',
      'run.mjs',
      "import * as mod from '@oauth-broker/client';\nconst { BrokerClient, BrokerProblemError } = mod;",
    ],
    [
      'CommonJS',
      'run.cjs',
      "const mod = require('@oauth-broker/client');\nconst { BrokerClient, BrokerProblemError } = mod;",
    ],
  ])('runs from %s against a real broker', async (flavour, file, loader) => {
    writeFileSync(join(project, file), runScript(loader));
    const { stdout } = await run(process.execPath, [file], {
      cwd: project,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        BROKER_URL: t.broker.internalUrl,
        BROKER_KEY: TEST_INTERNAL_KEY,
        FLAVOUR: flavour,
      },
    });
    expect(JSON.parse(stdout)).toEqual({
      providers: expect.arrayContaining(['jobber']),
      created: true,
      token: `imported-${flavour}`,
      status: 'active',
      missing: { code: 'connection_not_found', isProblem: true },
      exports: ['BrokerClient', 'BrokerProblemError', 'BrokerRequestError'],
    });
    const gone = await t.broker.api(`/internal/connections/jobber/pkg-${flavour}`);
    expect(gone.status).toBe(404);
  });

  it('loads one copy of the classes whichever way it is loaded (ESM entry re-exports the CommonJS one)', async () => {
    writeFileSync(
      join(project, 'same.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from '@oauth-broker/client';
const cjs = createRequire(import.meta.url)('@oauth-broker/client');
process.stdout.write(JSON.stringify([esm.BrokerClient === cjs.BrokerClient, esm.BrokerProblemError === cjs.BrokerProblemError,
  Object.keys(cjs).filter((k) => k !== '__esModule').sort().join() === Object.keys(esm).sort().join()]));`,
    );
    const { stdout } = await run(process.execPath, ['same.mjs'], { cwd: project, timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual([true, true, true]);
  });
});
