// The proxy beside its floor (a GET straight to the fake API): bench/proxy.mjs, its figures in the notes.
import { log, QUICK, results } from '../suite/settings.mjs';

async function run() {
  results.notes.push(
    `Proxy (bench/proxy.mjs): ${JSON.stringify(await (await import('../proxy.mjs')).runProxyBench({ quick: QUICK, log }))}`,
  );
}

export const scenario = { name: 'proxy', run };
