import pino, { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values never reach a log line, wherever they sit. The code path never logs
 * request bodies or axios errors either; this is the second line.
 */
const SECRET_FIELDS = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apiKey',
  'code',
  'code_verifier',
  'codeVerifier',
  'state',
  'client_secret',
  'clientSecret',
  'password',
  'secret',
  'token',
  'session',
  'csrf',
  'sealed',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = [
    ...SECRET_FIELDS,
    ...SECRET_FIELDS.map((f) => `*.${f}`),
    ...SECRET_FIELDS.map((f) => `*.*.${f}`),
  ];
  return pino(
    {
      level,
      base: { service: 'oauth-broker' },
      redact: { paths, censor: '[redacted]' },
      // An error that reaches a log as it is (an axios error holds the request's body and headers,
      // so a code, a secret or a token) is reduced to class, code, message and stack.
      serializers: { err: serializeError, error: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

function serializeError(value: unknown): unknown {
  return value instanceof Error ? errorForLog(value) : value;
}

/** What of an error may be logged: its class, code and message, never its request or response. */
export function errorForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: 'non-error thrown' };
  const out: Record<string, unknown> = { type: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') out.error_code = code;
  if (error.stack) out.stack = error.stack.split('\n').slice(0, 6).join('\n');
  return out;
}
