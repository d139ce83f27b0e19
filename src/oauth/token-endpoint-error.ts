/**
 * How a token endpoint call failed, reduced to what a caller must do about it:
 * - `invalid_grant`: the grant (code or refresh token) is dead; the user must connect again.
 * - `client_rejected`: the provider refused our own client credentials; an operator must act.
 * - `refused`: another definite refusal (invalid_scope, an unknown 4xx); retrying will not help.
 * - `unavailable`: network error, timeout, 5xx, 429 or garbage; retrying later may help.
 */
export type TokenFailureKind = 'invalid_grant' | 'client_rejected' | 'refused' | 'unavailable';

export class TokenEndpointError extends Error {
  readonly kind: TokenFailureKind;
  /** The provider's `error` code (RFC 6749 §5.2), when it sent one. */
  readonly oauthError?: string;
  readonly httpStatus?: number;

  constructor(
    kind: TokenFailureKind,
    message: string,
    details: { oauthError?: string; httpStatus?: number } = {},
  ) {
    super(message);
    this.name = 'TokenEndpointError';
    this.kind = kind;
    this.oauthError = details.oauthError;
    this.httpStatus = details.httpStatus;
  }

  get retryable(): boolean {
    return this.kind === 'unavailable';
  }
}
