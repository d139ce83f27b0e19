import { createLogger, errorForLog } from '../../../src/observability/logger';

/** A logger at trace level whose JSON lines are kept, one parsed object per line. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => string[] } {
  const written: string[] = [];
  const logger = createLogger('trace', { write: (line: string) => void written.push(line) });
  return { logger, lines: () => written };
}

describe('the logger redacts secret fields wherever they sit (the second line behind never logging them)', () => {
  it('censors secret fields at the top level, one level down and two levels down', () => {
    const { logger, lines } = capturingLogger();
    logger.info(
      {
        access_token: 'top-access-secret',
        provider: 'visible-provider',
        request: {
          refresh_token: 'nested-refresh-secret',
          code: 'nested-code-secret',
          route: 'visible-route',
        },
        upstream: {
          headers: { authorization: 'Bearer deep-authorization-secret', accept: 'visible-accept' },
          form: { client_secret: 'deep-client-secret', code_verifier: 'deep-verifier-secret' },
        },
      },
      'a line with secrets',
    );
    const [line] = lines();
    expect(line).toBeDefined();
    for (const secret of [
      'top-access-secret',
      'nested-refresh-secret',
      'nested-code-secret',
      'deep-authorization-secret',
      'deep-client-secret',
      'deep-verifier-secret',
    ])
      expect(line).not.toContain(secret);
    const parsed = JSON.parse(line!) as Record<string, any>;
    expect(parsed.access_token).toBe('[redacted]');
    expect(parsed.request.refresh_token).toBe('[redacted]');
    expect(parsed.request.code).toBe('[redacted]');
    expect(parsed.upstream.headers.authorization).toBe('[redacted]');
    expect(parsed.upstream.form.client_secret).toBe('[redacted]');
    expect(parsed.upstream.form.code_verifier).toBe('[redacted]');
    // What is not secret stays readable: the redaction is by field, not a blanket.
    expect(parsed.provider).toBe('visible-provider');
    expect(parsed.request.route).toBe('visible-route');
    expect(parsed.upstream.headers.accept).toBe('visible-accept');
    expect(parsed.msg).toBe('a line with secrets');
  });

  it.each([
    'authorization',
    'cookie',
    'set-cookie',
    'id_token',
    'api_key',
    'apiKey',
    'state',
    'clientSecret',
    'codeVerifier',
    'password',
    'secret',
    'token',
    'session',
    'csrf',
    'sealed',
  ])('censors %s', (field) => {
    const { logger, lines } = capturingLogger();
    logger.warn({ [field]: `value-of-${field}`, inner: { [field]: `inner-value-of-${field}` } }, 'line');
    const line = lines()[0]!;
    expect(line).not.toContain(`value-of-${field}`);
    const parsed = JSON.parse(line) as Record<string, any>;
    expect(parsed[field]).toBe('[redacted]');
    expect(parsed.inner[field]).toBe('[redacted]');
  });

  it('reduces a logged error to its class, code and message: no request config, body or headers', () => {
    const { logger, lines } = capturingLogger();
    const error = Object.assign(new Error('Request failed with status code 400'), {
      name: 'AxiosError',
      code: 'ERR_BAD_REQUEST',
      config: {
        data: 'grant_type=refresh_token&refresh_token=error-config-secret',
        headers: { Authorization: 'Basic x' },
      },
      response: { data: '{"echo":"error-body-secret"}' },
    });
    logger.error({ err: error }, 'refresh failed');
    logger.error({ error }, 'refresh failed');
    for (const line of lines()) {
      expect(line).not.toContain('error-config-secret');
      expect(line).not.toContain('error-body-secret');
      expect(line).toContain('ERR_BAD_REQUEST');
      expect(line).toContain('Request failed with status code 400');
    }
    expect(lines()).toHaveLength(2);
  });

  it('errorForLog keeps the type, message and string code, and says so for a non-error', () => {
    const out = errorForLog(
      Object.assign(new TypeError('bad'), { code: 'E_X', request: { body: 'secret' } }),
    );
    expect(out).toMatchObject({ type: 'TypeError', message: 'bad', error_code: 'E_X' });
    expect(Object.keys(out).sort()).toEqual(['error_code', 'message', 'stack', 'type']);
    expect(errorForLog('a string')).toEqual({ message: 'non-error thrown' });
  });
});
