import { ScheduleSettings } from '../../../src/connections/schedule';

/** The moment these tests call "now". */
export const NOW = 1_700_000_000_000;

/** The broker's defaults: refresh-ahead on, 5 min margin, 15 s sweeps, a week's keep-alive. */
export const SETTINGS: ScheduleSettings = {
  refreshAhead: true,
  refreshMarginMs: 300_000,
  sweepIntervalMs: 15_000,
  keepaliveMs: 604_800_000,
};

/** An active oauth2 connection refreshed (or connected) at NOW, whose token lives an hour. */
export const ACTIVE = {
  status: 'active' as const,
  auth_mode: 'oauth2' as const,
  refreshable: true,
  expires_at: NOW + 3_600_000,
  read_since_refresh: false,
  last_activity_at: NOW,
  refresh_failures: 0,
};
