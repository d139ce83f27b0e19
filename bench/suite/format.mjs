// How the results table of bench/run.mjs writes its figures.
export const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
export const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
export const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
export const ms = (x) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms` : 'n/a');
export const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');
