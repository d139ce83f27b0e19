// `npm run demo` runs this first: it builds (npm run build) only when a build output is missing or
// older than what it is built from, so a second start takes a second, not a compile.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

// Each output, and what it is built from.
const builds = [
  [
    join(root, 'packages', 'client', 'dist', 'index.js'),
    ['packages/client/src', 'packages/client/tsconfig.build.json'],
  ],
  [
    join(root, 'dist', 'demo', 'main.js'),
    ['src', 'packages/client/src', 'tsconfig.json', 'tsconfig.build.json'],
  ],
];
const stale = builds.some(
  ([output, inputs]) =>
    !existsSync(output) || statSync(output).mtimeMs < Math.max(...inputs.map((p) => newest(join(root, p)))),
);
if (stale) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'build'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  process.exit(result.status ?? 1);
}
