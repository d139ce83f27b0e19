import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Sample {
  start: number;
  end: number;
  status: number;
  code?: string;
}

/**
 * Keeps `loops` callers each sending one request after the other until `stop()`; records when
 * each request started and ended and what it answered. A request that throws records status 0.
 */
export function runLoad(
  loops: number,
  request: (i: number) => Promise<{ status: number; body: any }>,
  pauseMs = 20,
) {
  const samples: Sample[] = [];
  let running = true;
  let n = 0;
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      const start = Date.now();
      try {
        const res = await request(n++);
        samples.push({
          start,
          end: Date.now(),
          status: res.status,
          code: typeof res.body === 'object' ? res.body?.code : undefined,
        });
      } catch {
        samples.push({ start, end: Date.now(), status: 0 });
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    samples,
    async stop(): Promise<Sample[]> {
      running = false;
      await Promise.all(workers);
      return samples;
    },
  };
}

/** The span from the first failure's start to the last failure's end (ms), or 0. */
export function failureWindow(samples: Sample[]): { first: number; last: number; ms: number; count: number } {
  const failed = samples.filter((s) => s.status !== 200);
  if (failed.length === 0) return { first: 0, last: 0, ms: 0, count: 0 };
  const first = Math.min(...failed.map((s) => s.start));
  const last = Math.max(...failed.map((s) => s.end));
  return { first, last, ms: last - first, count: failed.length };
}

/** Figures measured by a test, kept in test-artifacts/ (ignored by git) for reports. */
export function recordFigures(name: string, figures: Record<string, unknown>): void {
  const dir = resolve(__dirname, '../../test-artifacts');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ at: new Date().toISOString(), ...figures }, null, 2)}\n`,
  );
}
