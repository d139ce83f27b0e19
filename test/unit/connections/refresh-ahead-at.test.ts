import {
  REFRESH_AHEAD_WINDOW_MS,
  computeNextRefreshAt,
  refreshAheadAt,
} from '../../../src/connections/schedule';
import { ACTIVE, NOW, SETTINGS } from './schedule-fixtures';

const settings = SETTINGS;
const read = { ...ACTIVE, read_since_refresh: true };
const mid = () => 0.5;

describe('refreshAheadAt: the refresh-ahead moment of a read connection (REFRESH_AHEAD)', () => {
  it('lies inside the last 60 s before the token turns stale (expires_at - REFRESH_MARGIN)', () => {
    const staleAt = read.expires_at - settings.refreshMarginMs;
    for (let i = 0; i < 100; i++) {
      const at = refreshAheadAt(read, settings, NOW)!;
      expect(at).toBeGreaterThanOrEqual(staleAt - REFRESH_AHEAD_WINDOW_MS);
      expect(at).toBeLessThan(staleAt);
    }
  });

  it('spreads connections that expire together (jitter)', () => {
    const moments = new Set(Array.from({ length: 50 }, () => refreshAheadAt(read, settings, NOW)));
    expect(moments.size).toBeGreaterThan(10);
  });

  it.each([
    ['REFRESH_AHEAD is off', read, { ...settings, refreshAhead: false }],
    ['nobody read it since its last refresh', { ...read, read_since_refresh: false }, settings],
    ['it has no refresh token', { ...read, refreshable: false }, settings],
    ['its expiry is unknown', { ...read, expires_at: null }, settings],
    ['it needs the user again', { ...read, status: 'reauthorization_required' as const }, settings],
  ])('is null when %s', (_name, meta, s) => {
    expect(refreshAheadAt(meta, s, NOW, mid)).toBeNull();
  });

  it('is never in the past for a token already inside its window', () => {
    const late = { ...read, expires_at: NOW + settings.refreshMarginMs - 30_000 };
    expect(refreshAheadAt(late, settings, NOW, mid)).toBe(NOW);
  });
});

describe('computeNextRefreshAt: the earlier of keep-alive and refresh-ahead', () => {
  it('takes refresh-ahead when the token turns stale before keep-alive is due', () => {
    expect(computeNextRefreshAt(read, settings, NOW, mid)).toBe(refreshAheadAt(read, settings, NOW, mid));
  });

  it('takes keep-alive when it comes first', () => {
    const longLived = { ...read, expires_at: NOW + 30 * 86_400_000 };
    expect(computeNextRefreshAt(longLived, settings, NOW, mid)).toBe(NOW + settings.keepaliveMs);
  });

  it('plans a failed connection by its backoff alone, even when refresh-ahead would come sooner', () => {
    const failing = { ...read, refresh_failures: 1, expires_at: NOW + settings.refreshMarginMs + 1000 };
    expect(computeNextRefreshAt(failing, settings, NOW, mid)).toBe(NOW + settings.sweepIntervalMs);
  });
});
