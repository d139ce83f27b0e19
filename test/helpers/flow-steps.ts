import Redis from 'ioredis';
import { TestBroker } from './broker-harness';
import { isIndexed, scheduledAt } from './index-entries';
import { PageResponse, TestBrowser } from './browser';

/**
 * Step-by-step pieces of the browser journey, for tests that tamper with one step (replays,
 * forged or swapped `state`, mix-ups), and a look at what one connection left in Redis.
 */
export interface StartedFlow {
  state: string;
  authorizeUrl: URL;
  auth: PageResponse;
}

/** Asks for a connect link and opens it in `browser`; answers the flow's `state`. */
export async function startFlow(
  broker: TestBroker,
  browser: TestBrowser,
  provider: string,
  connectionId: string,
  extra: Record<string, unknown> = {},
): Promise<StartedFlow> {
  const link = await broker.connectLink(provider, connectionId, extra);
  const auth = await browser.get(onListener(broker, link));
  if (auth.status !== 302 || !auth.location)
    throw new Error(`/auth answered ${auth.status}: ${auth.body.slice(0, 200)}`);
  const authorizeUrl = new URL(auth.location);
  return { state: authorizeUrl.searchParams.get('state') ?? '', authorizeUrl, auth };
}

/** `/callback/:provider` on the broker's listener with this query. */
export function callbackUrl(broker: TestBroker, provider: string, query: Record<string, string>): string {
  return `${broker.publicUrl}/callback/${provider}?${new URLSearchParams(query).toString()}`;
}

/** A PUBLIC_URL-based link (which may name an https origin) pointed at the test listener. */
export function onListener(broker: TestBroker, link: string): string {
  const url = new URL(link);
  return `${broker.publicUrl}${url.pathname}${url.search}`;
}

export interface Footprint {
  /** Keys carrying the connection's hash tag. */
  keys: string[];
  /** Listed in the connections index. */
  indexed: boolean;
  /** On the due-work schedule. */
  scheduled: boolean;
}

/** What one connection has in Redis: its tagged keys, its index and schedule entries. */
export async function connectionFootprint(
  redis: Redis,
  provider: string,
  connectionId: string,
  prefix = 'ob:',
): Promise<Footprint> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(
      cursor,
      'MATCH',
      `${prefix}{${provider}:${connectionId}}*`,
      'COUNT',
      1000,
    );
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const member = `${provider}:${connectionId}`;
  const [indexed, scheduled] = await Promise.all([
    isIndexed(redis, prefix, member),
    scheduledAt(redis, prefix, member),
  ]);
  return { keys, indexed, scheduled: scheduled !== null };
}

export const NOTHING_STORED: Footprint = { keys: [], indexed: false, scheduled: false };

/** Token requests that carried this authorization code. */
export function exchangesOf(requests: Array<{ params: Record<string, string> }>, code: string): number {
  return requests.filter((r) => r.params.grant_type === 'authorization_code' && r.params.code === code)
    .length;
}
