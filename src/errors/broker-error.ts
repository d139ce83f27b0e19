/**
 * The one error type of the broker. Callers branch on `code`, never on message text; only `http/`
 * turns it into problem+json. `detail` is safe to show; `cause` stays in the log.
 */
export const ERROR_CODES = {
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  invalid_request: { status: 400, title: 'Invalid request' },
  provider_not_found: { status: 404, title: 'Provider not found' },
  provider_not_enabled: { status: 404, title: 'Provider not enabled' },
  connection_not_found: { status: 404, title: 'Connection not found' },
  not_found: { status: 404, title: 'Not found' },
  reauthorization_required: { status: 409, title: 'Reauthorization required' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  provider_unavailable: { status: 502, title: 'Provider unavailable' },
  provider_rejected_client: { status: 502, title: 'Provider rejected client credentials' },
  proxy_not_configured: { status: 404, title: 'Proxy not configured' },
  proxy_body_too_large: { status: 413, title: 'Proxy body too large to retry' },
  decryption_failed: { status: 500, title: 'Decryption failed' },
  store_unavailable: { status: 503, title: 'Store unavailable' },
  internal_error: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface BrokerErrorOptions {
  /** Whether retrying the same request later may succeed (502s only). */
  retryable?: boolean;
  /** The underlying error, for the log only. */
  cause?: unknown;
  /** Extra public fields for the problem body. */
  extra?: Record<string, unknown>;
  /** Another status than the code's usual one (the proxy's 504 `provider_unavailable`). */
  status?: number;
}

export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string;
  readonly retryable?: boolean;
  readonly extra?: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, options: BrokerErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = detail;
    this.retryable = options.retryable;
    this.extra = options.extra;
  }
}

export function isBrokerError(error: unknown): error is BrokerError {
  return error instanceof BrokerError;
}
