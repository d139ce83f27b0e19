// The scenarios of `npm run bench`, in the order they run and appear in the results table. Each file
// exports `scenario`: { name (for --only), run(env)?, skipped(env)? (what the others need when it does
// not run), rows(scenarioResults)? (its section of the table, heading first), notes(scenarioResults)?,
// method()? (its bullet under "How it is measured") }. A new scenario: its file, and its name here.
const NAMES = [
  'token',
  'stampede',
  'connect',
  'scale',
  'proxy',
  // Measured alongside the others (by bench/run.mjs, token and scale); its rows come last.
  'memory',
];

export const SCENARIOS = await Promise.all(
  NAMES.map(async (name) => (await import(`./${name}.mjs`)).scenario),
);
