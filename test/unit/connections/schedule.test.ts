import { computeNextRefreshAt } from '../../../src/connections/schedule';
import { ACTIVE, NOW, SETTINGS } from './schedule-fixtures';

const settings = SETTINGS;
const base = ACTIVE;
const low = () => 0;
const high = () => 0.999999;

describe('computeNextRefreshAt: when the broker refreshes a connection by itself', () => {
  it('plans keep-alive KEEPALIVE_AFTER after the last connect, import or refresh', () => {
    expect(computeNextRefreshAt({ ...base, last_activity_at: NOW - 1000 }, settings, NOW)).toBe(
      NOW - 1000 + 604_800_000,
    );
  });

  it('plans nothing when keep-alive is off and nobody read the connection', () => {
    expect(computeNextRefreshAt(base, { ...settings, keepaliveMs: 0 }, NOW)).toBeNull();
  });

  it('plans refresh-ahead for a read connection between 55 s and 5 s before it turns stale', () => {
    const read = { ...base, read_since_refresh: true };
    const staleAt = base.expires_at - settings.refreshMarginMs;
    expect(computeNextRefreshAt(read, settings, NOW, low)).toBe(staleAt - 55_000);
    expect(computeNextRefreshAt(read, settings, NOW, high)).toBe(staleAt - 5_000);
  });

  it('does not plan refresh-ahead when REFRESH_AHEAD is off or the connection was not read', () => {
    expect(
      computeNextRefreshAt(
        { ...base, read_since_refresh: true },
        { ...settings, refreshAhead: false, keepaliveMs: 0 },
        NOW,
      ),
    ).toBeNull();
    expect(computeNextRefreshAt(base, { ...settings, keepaliveMs: 0 }, NOW)).toBeNull();
  });

  it('makes a read inside the window due now rather than at a moment already past', () => {
    const read = { ...base, read_since_refresh: true, expires_at: NOW + settings.refreshMarginMs + 10_000 };
    expect(computeNextRefreshAt(read, settings, NOW, low)).toBe(NOW);
  });

  it('backs off after failures from about SWEEP_INTERVAL, doubling, never beyond an hour', () => {
    const at = (failures: number, random: () => number) =>
      computeNextRefreshAt({ ...base, refresh_failures: failures }, settings, NOW, random)! - NOW;
    expect(at(1, low)).toBe(13_500);
    expect(at(1, high)).toBe(16_500);
    expect(at(2, low)).toBe(27_000);
    expect(at(3, low)).toBe(54_000);
    expect(at(9, high)).toBe(3_600_000);
    expect(at(5000, low)).toBe(3_600_000);
  });

  it('takes a connection that needs the user, or has nothing to refresh with, off the schedule', () => {
    expect(computeNextRefreshAt({ ...base, status: 'reauthorization_required' }, settings, NOW)).toBeNull();
    expect(computeNextRefreshAt({ ...base, refreshable: false }, settings, NOW)).toBeNull();
    expect(computeNextRefreshAt({ ...base, auth_mode: 'api_key' }, settings, NOW)).toBeNull();
    expect(
      computeNextRefreshAt(
        { ...base, status: 'reauthorization_required', refresh_failures: 3 },
        settings,
        NOW,
      ),
    ).toBeNull();
  });
});
