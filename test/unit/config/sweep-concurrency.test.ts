import { loadConfig } from '../../../src/config/load-config';
import { VALID, problemsOf } from './config-fixtures';

describe('loadConfig: SWEEP_CONCURRENCY and SWEEP_CONCURRENCY_PER_PROVIDER bound the background refreshes', () => {
  it('defaults to 8 in all and 2 per provider', () => {
    expect(loadConfig(VALID)).toMatchObject({ sweepConcurrency: 8, sweepConcurrencyPerProvider: 2 });
  });

  it.each([
    [{ SWEEP_CONCURRENCY: '16' }, 16, 2],
    [{ SWEEP_CONCURRENCY_PER_PROVIDER: '8' }, 8, 8],
    [{ SWEEP_CONCURRENCY: '20', SWEEP_CONCURRENCY_PER_PROVIDER: '5' }, 20, 5],
    [{ SWEEP_CONCURRENCY: '1', SWEEP_CONCURRENCY_PER_PROVIDER: '1' }, 1, 1],
    [{ SWEEP_CONCURRENCY: ' 100 ', SWEEP_CONCURRENCY_PER_PROVIDER: '100' }, 100, 100],
    [{ SWEEP_CONCURRENCY: '', SWEEP_CONCURRENCY_PER_PROVIDER: '' }, 8, 2],
  ])('accepts %p', (env, total, perProvider) => {
    expect(loadConfig({ ...VALID, ...env })).toMatchObject({
      sweepConcurrency: total,
      sweepConcurrencyPerProvider: perProvider,
    });
  });

  it('lowers the per-provider default to a SWEEP_CONCURRENCY below it instead of refusing to start', () => {
    expect(loadConfig({ ...VALID, SWEEP_CONCURRENCY: '1' })).toMatchObject({
      sweepConcurrency: 1,
      sweepConcurrencyPerProvider: 1,
    });
  });

  it.each([
    ['SWEEP_CONCURRENCY', '0'],
    ['SWEEP_CONCURRENCY', '-1'],
    ['SWEEP_CONCURRENCY', '2.5'],
    ['SWEEP_CONCURRENCY', '101'],
    ['SWEEP_CONCURRENCY', 'eight'],
    ['SWEEP_CONCURRENCY_PER_PROVIDER', '0'],
    ['SWEEP_CONCURRENCY_PER_PROVIDER', '-2'],
    ['SWEEP_CONCURRENCY_PER_PROVIDER', '1.5'],
    ['SWEEP_CONCURRENCY_PER_PROVIDER', '1e2'],
    ['SWEEP_CONCURRENCY_PER_PROVIDER', 'two'],
  ])('refuses %s=%p with one line naming it and the range', (name, value) => {
    expect(problemsOf({ ...VALID, [name]: value })).toEqual([`${name}: must be an integer from 1 to 100`]);
  });

  it('refuses a per-provider bound above the total, naming both', () => {
    expect(problemsOf({ ...VALID, SWEEP_CONCURRENCY: '4', SWEEP_CONCURRENCY_PER_PROVIDER: '6' })).toEqual([
      'SWEEP_CONCURRENCY_PER_PROVIDER: must not exceed SWEEP_CONCURRENCY (4)',
    ]);
    // Against the default total (8) too.
    expect(problemsOf({ ...VALID, SWEEP_CONCURRENCY_PER_PROVIDER: '9' })).toEqual([
      'SWEEP_CONCURRENCY_PER_PROVIDER: must not exceed SWEEP_CONCURRENCY (8)',
    ]);
  });

  it('reports a bad total once, without a second line about the per-provider bound', () => {
    expect(problemsOf({ ...VALID, SWEEP_CONCURRENCY: '0', SWEEP_CONCURRENCY_PER_PROVIDER: '4' })).toEqual([
      'SWEEP_CONCURRENCY: must be an integer from 1 to 100',
    ]);
  });

  it('reports both when both are wrong, beside the other problems', () => {
    const problems = problemsOf({
      ...VALID,
      SESSION_SECRET: undefined,
      SWEEP_CONCURRENCY: '-3',
      SWEEP_CONCURRENCY_PER_PROVIDER: 'x',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      ['SESSION_SECRET', 'SWEEP_CONCURRENCY', 'SWEEP_CONCURRENCY_PER_PROVIDER'].sort(),
    );
  });
});
