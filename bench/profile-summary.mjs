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
