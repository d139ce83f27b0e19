import { ChaosRun } from './chaos-run';

/**
 * The guarantees every chaos scenario is checked against, from outside, once its run is over
 * (docs/chaos-testing.md): one `it` each, so a report names the guarantee that broke. `recovery`
 * says what "service back" is measured from in this scenario.
 */
export function itKeepsTheGuarantees(run: () => ChaosRun, recovery: string): void {
  it('keeps every connection that should be active active and refreshing, a deleted one gone, the listing true to both', () => {
    expect(
      run().breaches(
        'active connection not active',
        'active connection does not refresh',
        'active connection answered 409',
        'active connection answered 404',
        'deleted connection came back',
        'listing misses an active connection',
        'listing shows a deleted connection',
        'listing failed',
      ),
    ).toEqual([]);
  });

  it('never presents a refresh token the provider has rotated away', () => {
    expect(run().breaches('retired refresh token presented again')).toEqual([]);
  });

  it('answers only the contract codes, never 500', () => {
    // Each 500 carries its request id and the broker's log line for it.
    expect(run().breaches('answer 500', 'answer outside the contract')).toEqual([]);
  });

  it(`serves again within 3 s of ${recovery}, and exits 0 on SIGTERM`, () => {
    expect(run().breaches('slow recovery', 'SIGTERM did not exit 0')).toEqual([]);
  });

  it('delivers every webhook event at least once, never twice at the same time', () => {
    expect(
      run().breaches('webhook queue not drained', 'webhook sent twice at once', 'webhook not delivered'),
    ).toEqual([]);
  });

  it('leaves no live grant behind a delete', () => {
    expect(run().breaches('live grant after delete')).toEqual([]);
  });
}
