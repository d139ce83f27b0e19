/** The internal API key every test broker accepts. */
export const TEST_INTERNAL_KEY = 'test-internal-key-0123456789abcdef';

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

export interface ApiInit {
  method?: string;
  /** JSON-encoded unless already a string; sent with `content-type: application/json` by default. */
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * One call to a broker's internal API at `baseUrl` with the test key (headers may replace it);
 * the answer's body parsed as JSON when it is JSON, else its text.
 */
export async function callApi(baseUrl: string, path: string, init: ApiInit = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${TEST_INTERNAL_KEY}`, ...init.headers };
  let body: string | undefined;
  if (init.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body,
    signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** POST /internal/connect-sessions on the broker at `baseUrl`; answers the link, or throws. */
export async function requestConnectLink(
  baseUrl: string,
  provider: string,
  connectionId: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await callApi(baseUrl, '/internal/connect-sessions', {
    method: 'POST',
    body: { provider, connection_id: connectionId, ...extra },
  });
  if (res.status !== 201)
    throw new Error(`connect-sessions answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.url as string;
}
