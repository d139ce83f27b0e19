import { createHash } from 'node:crypto';
import { buildAuthorizationUrl } from '../../../src/oauth/build-authorization-url';

const provider = {
  authorization_url: 'https://acme.example/oauth/authorize',
  authorization_params: {} as Record<string, string>,
  client_id: 'the-client',
  redirect_uri: 'https://broker.example/callback/acme',
  scope_separator: ' ',
  pkce: 'S256' as const,
};
const request = { state: 'the-state', codeVerifier: 'v'.repeat(43), scopes: ['read', 'write'] };
const query = (url: string) => new URL(url).searchParams;

describe('buildAuthorizationUrl: the code flow request (RFC 6749 §4.1.1) with PKCE (RFC 7636 §4.3)', () => {
  it('sends response_type=code, the client id, the configured redirect_uri, state and the scopes', () => {
    const url = buildAuthorizationUrl(provider, request);
    expect(url.startsWith('https://acme.example/oauth/authorize?')).toBe(true);
    const q = query(url);
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('the-client');
    expect(q.get('redirect_uri')).toBe('https://broker.example/callback/acme');
    expect(q.get('state')).toBe('the-state');
    expect(q.get('scope')).toBe('read write');
  });

  it('sends the S256 challenge of the verifier, never the verifier itself', () => {
    const q = query(buildAuthorizationUrl(provider, request));
    const expected = createHash('sha256').update(request.codeVerifier).digest('base64url');
    expect(q.get('code_challenge')).toBe(expected);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(buildAuthorizationUrl(provider, request)).not.toContain(request.codeVerifier);
  });

  it("sends no PKCE parameters for a provider whose pkce is 'none'", () => {
    const q = query(buildAuthorizationUrl({ ...provider, pkce: 'none' }, request));
    expect(q.has('code_challenge')).toBe(false);
    expect(q.has('code_challenge_method')).toBe(false);
  });

  it("joins scopes with the provider's separator, and sends no scope when there are none", () => {
    expect(query(buildAuthorizationUrl({ ...provider, scope_separator: ',' }, request)).get('scope')).toBe(
      'read,write',
    );
    expect(query(buildAuthorizationUrl(provider, { ...request, scopes: [] })).has('scope')).toBe(false);
  });

  it('adds the catalogue authorization_params, which can never replace a protocol parameter', () => {
    const url = buildAuthorizationUrl(
      {
        ...provider,
        authorization_params: {
          access_type: 'offline',
          redirect_uri: 'https://attacker.example/cb',
          state: 'fixed',
          response_type: 'token',
          code_challenge_method: 'plain',
          scope: 'everything',
        },
      },
      { ...request, scopes: [] },
    );
    const q = query(url);
    expect(q.get('access_type')).toBe('offline');
    expect(q.getAll('redirect_uri')).toEqual(['https://broker.example/callback/acme']);
    expect(q.getAll('state')).toEqual(['the-state']);
    expect(q.getAll('response_type')).toEqual(['code']);
    expect(q.getAll('code_challenge_method')).toEqual(['S256']);
    // No scope asked for: a catalogue default scope parameter is not sent either.
    expect(q.has('scope')).toBe(false);
  });

  it("keeps the authorization endpoint's own query and encodes values", () => {
    const url = buildAuthorizationUrl(
      { ...provider, authorization_url: 'https://acme.example/authorize?tenant=a%20b' },
      { ...request, state: 'a&b=c', scopes: ['x y'] },
    );
    const q = query(url);
    expect(q.get('tenant')).toBe('a b');
    expect(q.get('state')).toBe('a&b=c');
    expect(q.getAll('scope')).toEqual(['x y']);
  });
});
