import { ProblemBody, ProblemCode } from './types';

/**
 * An answer of the broker that is not a success. Callers branch on `code` (stable), never on
 * `message`. `retryable` is true when the same request may succeed later: the broker said so
 * (`retryable: true`), or the store was unavailable (503).
 */
export class BrokerProblemError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly detail: string;
  readonly requestId?: string;
  /** The whole problem body, for fields such as `current_token_expires_at`. */
  readonly problem: ProblemBody;

  constructor(problem: ProblemBody) {
    super(`${problem.code}: ${problem.detail}`);
    this.name = 'BrokerProblemError';
    this.code = problem.code;
    this.status = problem.status;
    this.detail = problem.detail;
    this.retryable = problem.retryable === true || problem.status === 503;
    this.requestId = problem.request_id;
    this.problem = problem;
  }
}

/** The broker could not be reached, timed out, or answered something that is not its API. */
export class BrokerRequestError extends Error {
  /** The HTTP status when there was an answer. */
  readonly status?: number;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerRequestError';
    this.status = options.status;
  }
}
