import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * No Docker engine runs where the tests run, so the essentials of the image and the compose file
 * are read from the files themselves (`docker-compose config` parses the compose file by hand).
 */
const root = join(__dirname, '..', '..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8');

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Array<{ op: string; args: string }> {
  return text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of the last stage: what the running image is made of. */
function finalStage(): Array<{ op: string; args: string }> {
  const all = instructions(dockerfile);
  const lastFrom = all.map((i) => i.op).lastIndexOf('FROM');
  return all.slice(lastFrom);
}

/** The block of lines under a top-level or service key, by indentation. */
function block(text: string, header: RegExp): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => header.test(l));
  if (start < 0) return '';
  const indent = /^\s*/.exec(lines[start]!)![0].length;
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() && !line.trim().startsWith('#') && /^\s*/.exec(line)![0].length <= indent) break;
    out.push(line);
  }
  return out.join('\n');
}

describe('Dockerfile', () => {
  it('builds in a stage with dev dependencies and runs on a slim Node 20 image', () => {
    const froms = instructions(dockerfile).filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[froms.length - 1]!.args).toMatch(/^node:20[\w.-]*slim/);
    expect(dockerfile).toMatch(/RUN npm ci(?![^\n]*--omit=dev)/);
    expect(dockerfile).toMatch(/RUN npm run build/);
  });

  it('copies only dist/ and production dependencies into the running image', () => {
    const copies = finalStage().filter((i) => i.op === 'COPY' || i.op === 'ADD');
    const sources = copies.map((c) => c.args.replace(/--\S+\s*/g, '').split(/\s+/)[0]);
    expect(sources.sort()).toEqual(['/app/dist', '/app/node_modules', 'package.json'].sort());
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(finalStage().some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('runs as a non-root user', () => {
    const users = finalStage().filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]!.args).not.toMatch(/^(root|0)(:|$)/);
  });

  it('checks /healthz with node itself, since the slim image has no curl', () => {
    const health = finalStage().find((i) => i.op === 'HEALTHCHECK');
    expect(health).toBeDefined();
    expect(health!.args).toMatch(/CMD \["node"/);
    expect(health!.args).toContain('/healthz');
    expect(health!.args).not.toMatch(/curl|wget/);
  });

  it('starts node dist/main.js directly, never through npm, so SIGTERM reaches the broker', () => {
    const cmd = finalStage().filter((i) => i.op === 'CMD' || i.op === 'ENTRYPOINT');
    expect(cmd).toEqual([{ op: 'CMD', args: '["node", "dist/main.js"]' }]);
  });

  it('runs node with the V8 options `npm start` gets from .npmrc (what the benchmark measures)', () => {
    const env = finalStage()
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    const options = /NODE_OPTIONS=(\S+)/.exec(env)?.[1];
    expect(options).toBe('--max-semi-space-size=8');
    const npmrc = readFileSync(join(root, '.npmrc'), 'utf8');
    expect(/^node-options=(.*)$/m.exec(npmrc)?.[1]?.trim()).toBe(options);
    // The contract: `npm start` runs `node dist/main.js`.
    const start = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.start as string;
    expect(start).toBe('node dist/main.js');
  });

  it('exposes the public and the internal port', () => {
    const expose = finalStage().find((i) => i.op === 'EXPOSE');
    expect(expose?.args.split(/\s+/).sort()).toEqual(['3000', '3001']);
  });

  it('keeps secrets, tests and local builds out of the build context', () => {
    const ignored = dockerignore.split('\n').map((l) => l.trim());
    for (const entry of ['.env', 'node_modules', 'dist', '.git', 'test']) expect(ignored).toContain(entry);
  });
});

describe('docker-compose.yml', () => {
  const redis = block(compose, /^ {2}redis:\s*$/);
  const broker = block(compose, /^ {2}broker:\s*$/);
  const volumes = block(compose, /^volumes:\s*$/);

  it('runs Redis with append-only persistence on a named volume', () => {
    expect(redis).toMatch(/image:\s*redis:7/);
    expect(redis).toMatch(/--appendonly["',\s]+yes/);
    const mount = /-\s*([\w-]+):\/data\b/.exec(redis);
    expect(mount).not.toBeNull();
    expect(volumes).toMatch(new RegExp(`^\\s+${mount![1]}:`, 'm'));
  });

  it('publishes both broker ports, reads .env and waits for a healthy Redis', () => {
    expect(broker).toMatch(/env_file:\s*\.env/);
    expect(broker).toMatch(/-\s*["']?3000:3000["']?/);
    expect(broker).toMatch(/-\s*["']?(127\.0\.0\.1:)?3001:3001["']?/);
    expect(broker).toMatch(/depends_on:\s*\n\s+redis:\s*\n\s+condition:\s*service_healthy/);
    expect(redis).toMatch(/healthcheck:/);
  });

  it('points the broker at the compose Redis and opens the internal listener to the compose network', () => {
    expect(broker).toMatch(/REDIS_URL:\s*redis:\/\/redis:6379/);
    expect(broker).toMatch(/INTERNAL_HOST:\s*0\.0\.0\.0/);
  });
});
