// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and the
// same time grouped by file/package. Usage: node bench/profile-summary.mjs <file> [top=25]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function place(url) {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (path.startsWith('node:')) return path;
  const dist = path.indexOf('/dist/');
  return dist >= 0 ? path.slice(dist + 1) : path;
}

export function summarise(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self]
    .filter(([id]) => byId.get(id).callFrame.functionName === '(idle)')
    .reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;
  const label = (cf) =>
    `${cf.functionName || '(anonymous)'}  ${place(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  const fn = new Map();
  const files = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') continue;
    fn.set(label(cf), (fn.get(label(cf)) ?? 0) + us);
    const p = cf.url ? place(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(native)';
    files.set(p, (files.get(p) ?? 0) + us);
  }
  // Inclusive (self + synchronous callees) time, counted once per function even when it recurses.
  const inclusive = new Map();
  const walk = (node, stack) => {
    let sum = self.get(node.id) ?? 0;
    const name = label(node.callFrame);
    const inner = new Set(stack).add(name);
    for (const child of node.children ?? []) sum += walk(byId.get(child), inner);
    if (!stack.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    return sum;
  };
  walk(profile.nodes[0], new Set());
  const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  const lines = [
    `sampled ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s; percentages are of busy time`,
    '',
    'top self time by function:',
  ];
  for (const [name, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`${pct(us)}  ${name}`);
  lines.push('', 'self time by file or package:');
  for (const [name, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`${pct(us)}  ${name}`);
  lines.push('', "inclusive time of the broker's own functions (dist/), synchronous part:");
  const own = [...inclusive].filter(([name]) => name.includes(' dist/'));
  for (const [name, us] of own.sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${name}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(summarise(file, Number(top ?? 25)));
}

/** What a frame of the broker's own code (dist/) does, for `phases`: by file, the route by function. */
const OWN_PHASES = [
  [/dist\/access\/caller-resolver\.js/, 'key check'],
  [/dist\/access\//, 'grant check'],
  [/dist\/connections\/(key-ring|connection-secrets|token-cipher|crypto)/, 'decryption'],
  [/dist\/audit\/|dist\/http\/internal-access\.js/, 'audit entry (build, batch, XADD)'],
  [/dist\/http\/request-context\.js/, 'request id, metrics, log line'],
  [/dist\/observability\/logger/, 'logging'],
  [/dist\/observability\//, 'metrics'],
  [/dist\/connections\/(connection-store|redis-client|redis-keys)/, 'Redis script (read, claim)'],
  [/dist\/connections\//, 'token service (getToken)'],
  [/dist\/http\/(validate|resolve-provider)/, 'route: input checks'],
  [/dist\/http\/routes\/token-route\.js/, 'route'],
  [/dist\/http\/internal-app\.js/, 'route'],
  [/dist\//, 'other broker code'],
];

/** Frames between a sample's leaf and its innermost own frame that say more about what it does. */
function detailOf(cf, where) {
  const name = cf.functionName;
  if (name === 'stringify' || (where === '(native)' && /^(parse|stringify)$/.test(name))) return 'JSON';
  if (
    /^(writeHead|_storeHeader|setHeader|processHeader|_writeRaw)$/.test(name) ||
    /^validateHeader/.test(name)
  )
    return 'response head';
  if (/^(writev|writeUtf8String|writeBuffer|writeLatin1String)$/.test(name) && where === '(native)')
    return 'socket write (system call)';
  if (where === 'node:_http_outgoing') return 'response write';
  if (where === 'prom-client') return 'metrics';
  if (where === 'pino' || where.startsWith('pino')) return 'logging';
  if (where.startsWith('node:internal/crypto') || name === 'randomUUID') return 'crypto';
  if (where === 'ioredis' || where === 'redis-parser' || where === 'denque') return 'ioredis';
  return undefined;
}

/** Where a sample's time goes when no frame of the broker's own is on its stack. */
function outsideOf(cf, where) {
  if (cf.functionName === '(garbage collector)') return 'GC';
  if (cf.functionName === '(program)') return 'V8/Node (program)';
  if (
    where === 'ioredis' ||
    where === 'redis-parser' ||
    where === 'denque' ||
    where === 'standard-as-callback'
  )
    return 'ioredis: replies (parse, callbacks)';
  if (/^node:(_http|internal\/http|http)/.test(where)) return 'Node HTTP (request parse, response)';
  if (
    /^node:(net|internal\/stream|internal\/streams|stream|events|internal\/process|timers|internal\/timers)/.test(
      where,
    )
  )
    return 'Node sockets, streams, event loop';
  if (where === 'express' || where === 'router') return 'Express';
  return `other: ${where}`;
}

/**
 * A request's CPU split into phases, in µs per request: each sample goes to the innermost frame of
 * the broker's own code on its stack (its file naming the phase: key check, Redis script,
 * decryption, audit…), refined by what it was doing there (JSON, the response head, metrics,
 * logging, ioredis); samples with no own frame go to what they ran (Node's HTTP, ioredis parsing
 * replies, GC). `window`: only the samples in the last `toMs − fromMs` before `exitMs` (wall clock,
 * when the profiled process exited), i.e. the load, not the start-up or seeding.
 */
export function phases(file, requests, window) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample times in µs since the profile's start.
  let t = profile.startTime;
  const end = profile.endTime;
  const keepFrom = window ? end - (window.exitMs - window.fromMs) * 1000 : -Infinity;
  const keepTo = window ? end - (window.exitMs - window.toMs) * 1000 : Infinity;
  const sums = new Map();
  let kept = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < keepFrom || t > keepTo) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(profile.samples[i]);
    if (leaf.callFrame.functionName === '(idle)') continue;
    kept += dt;
    let label;
    let detail;
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id).callFrame;
      const where = place(cf.url);
      const own = cf.url && where.startsWith('dist/') ? OWN_PHASES.find(([re]) => re.test(where)) : undefined;
      if (own) {
        label = detail ? `${own[1]}: ${detail}` : own[1];
        break;
      }
      detail ??= detailOf(cf, where);
    }
    label ??= outsideOf(leaf.callFrame, place(leaf.callFrame.url));
    sums.set(label, (sums.get(label) ?? 0) + dt);
  }
  const lines = [
    `busy ${(kept / 1e6).toFixed(2)} s of the load window; µs per request (${requests} requests):`,
  ];
  for (const [label, us] of [...sums].sort((a, b) => b[1] - a[1]))
    lines.push(`${(us / requests).toFixed(1).padStart(7)} µs  ${label}`);
  lines.push(`${(kept / requests).toFixed(1).padStart(7)} µs  total (profiled, main thread)`);
  return lines.join('\n');
}
