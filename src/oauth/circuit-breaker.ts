/**
 * One per provider, in process: after `threshold` failures in a row the provider is not called
 * for `openMs`; then one probe is let through (half-open) and its outcome closes or reopens it.
 * A failing provider answers 502 fast instead of tying up callers for PROVIDER_TIMEOUT each.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly threshold = 5,
    private readonly openMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a call may go out now. */
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    if (this.now() < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.failures = 0;
    this.probing = false;
  }

  failed(): void {
    this.failures += 1;
    this.probing = false;
    if (this.failures >= this.threshold) this.openUntil = this.now() + this.openMs;
  }

  get isOpen(): boolean {
    return this.failures >= this.threshold && this.now() < this.openUntil;
  }
}
