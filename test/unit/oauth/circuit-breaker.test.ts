import { CircuitBreaker } from '../../../src/oauth/circuit-breaker';

/** A breaker on a clock the test moves. */
function breaker(threshold = 3, openMs = 1000) {
  const clock = { now: 10_000 };
  return { b: new CircuitBreaker(threshold, openMs, () => clock.now), clock };
}

/** A breaker of threshold 2 and 1 s that has just opened, and its clock. */
function opened() {
  const { b, clock } = breaker(2, 1000);
  b.failed();
  b.failed();
  return { b, clock };
}

describe('CircuitBreaker: a failing provider is not called for a while', () => {
  it('lets calls through until `threshold` failures in a row', () => {
    const { b } = breaker(3);
    b.failed();
    b.failed();
    expect(b.allow()).toBe(true);
    expect(b.isOpen).toBe(false);
    b.failed();
    expect(b.isOpen).toBe(true);
    expect(b.allow()).toBe(false);
  });

  it('counts failures in a row only: a success in between starts the count again', () => {
    const { b } = breaker(3);
    b.failed();
    b.failed();
    b.succeeded();
    b.failed();
    b.failed();
    expect(b.allow()).toBe(true);
    expect(b.isOpen).toBe(false);
  });

  it('stays open for openMs, then lets exactly one probe through', () => {
    const { b, clock } = opened();
    clock.now += 999;
    expect(b.allow()).toBe(false);
    clock.now += 1;
    expect(b.isOpen).toBe(false);
    expect(b.allow()).toBe(true); // the probe
    expect(b.allow()).toBe(false); // others wait for its outcome
    expect(b.allow()).toBe(false);
  });

  it('closes when the probe succeeds', () => {
    const { b, clock } = opened();
    clock.now += 1000;
    expect(b.allow()).toBe(true);
    b.succeeded();
    expect(b.isOpen).toBe(false);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(true);
  });

  it('reopens for another openMs when the probe fails', () => {
    const { b, clock } = opened();
    clock.now += 1000;
    expect(b.allow()).toBe(true);
    b.failed();
    expect(b.isOpen).toBe(true);
    expect(b.allow()).toBe(false);
    clock.now += 999;
    expect(b.allow()).toBe(false);
    clock.now += 1;
    expect(b.allow()).toBe(true);
  });

  it('defaults to 5 failures and 30 s', () => {
    let now = 0;
    const b = new CircuitBreaker(undefined, undefined, () => now);
    for (let i = 0; i < 4; i++) b.failed();
    expect(b.allow()).toBe(true);
    b.failed();
    expect(b.allow()).toBe(false);
    now = 29_999;
    expect(b.allow()).toBe(false);
    now = 30_000;
    expect(b.allow()).toBe(true);
  });
});
