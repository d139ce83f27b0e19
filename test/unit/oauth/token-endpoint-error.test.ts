import { TokenEndpointError, TokenFailureKind } from '../../../src/oauth/token-endpoint-error';

describe('TokenEndpointError: a token endpoint failure reduced to what the caller must do', () => {
  it.each<[TokenFailureKind, boolean]>([
    ['invalid_grant', false],
    ['client_rejected', false],
    ['refused', false],
    ['unavailable', true],
  ])('%s is retryable=%s', (kind, retryable) => {
    expect(new TokenEndpointError(kind, 'm').retryable).toBe(retryable);
  });

  it('carries the kind, the provider error code and the HTTP status, and is an Error by name', () => {
    const error = new TokenEndpointError('invalid_grant', 'the refresh token is dead', {
      oauthError: 'invalid_grant',
      httpStatus: 400,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TokenEndpointError');
    expect(error.message).toBe('the refresh token is dead');
    expect(error).toMatchObject({ kind: 'invalid_grant', oauthError: 'invalid_grant', httpStatus: 400 });
  });

  it('leaves the provider details undefined when there were none (a network failure)', () => {
    const error = new TokenEndpointError('unavailable', 'provider timed out');
    expect(error.oauthError).toBeUndefined();
    expect(error.httpStatus).toBeUndefined();
  });
});
