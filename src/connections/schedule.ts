import { ConnectionMeta } from './connection-record';

export interface ScheduleSettings {
  refreshAhead: boolean;
  refreshMarginMs: number;
  sweepIntervalMs: number;
  /** Keep-alive interval of the connection's provider; 0 off. */
  keepaliveMs: number;
}

/** The broker's settings a connection's schedule is computed from (seconds, as configured). */
export interface ScheduleConfig {
  refreshAhead: boolean;
  refreshMarginSeconds: number;
  sweepIntervalSeconds: number;
}

/** The schedule settings of one provider's connections: the broker's, with its keep-alive. */
export function scheduleSettingsFor(
  config: ScheduleConfig,
  provider: { keepalive_seconds: number },
): ScheduleSettings {
  return {
    refreshAhead: config.refreshAhead,
    refreshMarginMs: config.refreshMarginSeconds * 1000,
    sweepIntervalMs: config.sweepIntervalSeconds * 1000,
    keepaliveMs: provider.keepalive_seconds * 1000,
  };
}

/** The window before a token turns stale in which refresh-ahead runs. */
export const REFRESH_AHEAD_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 3_600_000;

type ScheduleInput = Pick<
  ConnectionMeta,
  | 'status'
  | 'auth_mode'
  | 'refreshable'
  | 'expires_at'
  | 'read_since_refresh'
  | 'last_activity_at'
  | 'refresh_failures'
>;

/**
 * When the broker should next refresh a connection by itself, or null for never:
 * - after failures, exponential backoff from about SWEEP_INTERVAL, doubling, up to an hour;
 * - refresh-ahead, for a connection read since its last refresh, somewhere in the last 60 s
 *   before it turns stale (jittered, so many connections minted together spread out);
 * - keep-alive, KEEPALIVE_AFTER after the last connect, import or refresh.
 * A connection that needs the user again, or has nothing to refresh with, is not scheduled.
 */
export function computeNextRefreshAt(
  meta: ScheduleInput,
  settings: ScheduleSettings,
  now: number,
  random: () => number = Math.random,
): number | null {
  if (meta.status !== 'active' || meta.auth_mode !== 'oauth2' || !meta.refreshable) return null;
  if (meta.refresh_failures > 0) {
    const backoff = settings.sweepIntervalMs * 2 ** (meta.refresh_failures - 1);
    // Jittered ±10 % so connections that failed together spread out; never beyond the hour.
    return Math.round(now + Math.min(backoff * (0.9 + 0.2 * random()), MAX_BACKOFF_MS));
  }
  const candidates: number[] = [];
  if (settings.keepaliveMs > 0) candidates.push(meta.last_activity_at + settings.keepaliveMs);
  const ahead = refreshAheadAt(meta, settings, now, random);
  if (ahead !== null) candidates.push(ahead);
  return candidates.length > 0 ? Math.round(Math.min(...candidates)) : null;
}

/** The refresh-ahead moment of a read connection, or null when refresh-ahead does not apply. */
export function refreshAheadAt(
  meta: Pick<ConnectionMeta, 'expires_at' | 'read_since_refresh' | 'refreshable' | 'status'>,
  settings: Pick<ScheduleSettings, 'refreshAhead' | 'refreshMarginMs'>,
  now: number,
  random: () => number = Math.random,
): number | null {
  if (!settings.refreshAhead || !meta.read_since_refresh || !meta.refreshable || meta.expires_at === null)
    return null;
  if (meta.status !== 'active') return null;
  const staleAt = meta.expires_at - settings.refreshMarginMs;
  // Between 55 s and 5 s before it turns stale: inside the 60 s window, with room for a sweep.
  const planned = staleAt - REFRESH_AHEAD_WINDOW_MS + 5_000 + random() * 50_000;
  // A first read inside the window makes the work due now, not at a moment already past:
  // next_refresh_at is when the broker will act (docs/api.md: at most a SWEEP_INTERVAL behind).
  return Math.round(Math.max(planned, now));
}
