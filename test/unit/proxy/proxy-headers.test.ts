import { credentialHeaders } from '../../../src/proxy/credential-headers';
import { forwardableRequestHeaders, forwardableResponseHeaders } from '../../../src/proxy/proxy-headers';

describe('proxy header hygiene (RFC 9110 §7.6.1)', () => {
  it('drops credentials, cookies, Host, Broker-*, hop-by-hop and Connection-named headers going up', () => {
    const raw = [
      'Authorization',
      'Bearer broker-key',
      'Cookie',
      'a=1',
      'Host',
      'x',
      'Broker-Min-Validity',
      '5',
      'Connection',
      'X-Hop, keep-alive',
      'X-Hop',
      '1',
      'Keep-Alive',
      't=5',
      'Proxy-Authorization',
      'b',
      'TE',
      'trailers',
      'Trailer',
      'x',
      'Transfer-Encoding',
      'chunked',
      'Upgrade',
      'h2c',
      'Expect',
      '100-continue',
      'Content-Length',
      '3',
      'X-Request-Id',
      'r',
      'X-API-KEY',
      'callers',
      'Accept',
      'a/b',
      'X-Dup',
      '1',
      'x-dup',
      '2',
    ];
    expect(forwardableRequestHeaders(raw, new Set(['x-api-key']))).toEqual([
      ['Accept', 'a/b'],
      ['X-Dup', '1'],
      ['x-dup', '2'],
    ]);
  });

  it('drops Set-Cookie, hop-by-hop and Broker-* headers coming back, and groups repeated ones', () => {
    const raw = [
      'Set-Cookie',
      'a=1',
      'Connection',
      'close, X-Hop',
      'X-Hop',
      '1',
      'Broker-Error',
      'x',
      'Transfer-Encoding',
      'chunked',
      'Link',
      '<a>',
      'Link',
      '<b>',
      'Retry-After',
      '3',
    ];
    expect([...forwardableResponseHeaders(raw)]).toEqual([
      ['Link', ['<a>', '<b>']],
      ['Retry-After', ['3']],
    ]);
  });

  it('sends oauth2 tokens as Bearer (normalising bearer) and api keys as their block says', () => {
    const oauth = { auth_mode: 'oauth2' as const, access_token: 't', expires_at: null, scopes: [] };
    expect(credentialHeaders({ ...oauth, token_type: 'bearer' })).toEqual({ Authorization: 'Bearer t' });
    expect(credentialHeaders({ ...oauth, token_type: 'MAC' })).toEqual({ Authorization: 'MAC t' });
    expect(
      credentialHeaders({
        auth_mode: 'api_key',
        api_key: 'k',
        headers: { 'X-API-KEY': 'k' },
        expires_at: null,
        scopes: [],
      }),
    ).toEqual({ 'X-API-KEY': 'k' });
  });
});
