import { BrokerError } from '../../../src/errors/broker-error';
import { confineProxyPath, upstreamPathOf } from '../../../src/proxy/confine-path';

describe('confineProxyPath (the proxied path stays under api_base_url)', () => {
  it.each([
    '../x',
    'a/..',
    'a/./b',
    '%2E%2E/x',
    '%2e./x',
    '%252e%252e/x',
    '%25252e%25252e/x',
    'a%2Fb',
    'a%252fb',
    'a%5cb',
    'a\\b',
    '/host/x',
    '//host/x',
    'https:x',
    'user@host',
    'u%40host',
    'host%3A443',
    'a%zz',
  ])('refuses %s with invalid_request', (rest) => {
    let error: unknown;
    try {
      confineProxyPath(rest);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BrokerError);
    expect((error as BrokerError).code).toBe('invalid_request');
  });

  it('keeps the path and the query byte for byte', () => {
    expect(confineProxyPath('a/b%20c/d@e:f?x=%2F..&y')).toEqual({
      path: 'a/b%20c/d@e:f',
      query: 'x=%2F..&y',
    });
    expect(confineProxyPath('a?')).toEqual({ path: 'a', query: '' });
    expect(confineProxyPath('')).toEqual({ path: '', query: undefined });
  });

  it('joins under the base path, whatever its trailing slash', () => {
    expect(upstreamPathOf('/api/', { path: 'x/y', query: 'q=1' })).toBe('/api/x/y?q=1');
    expect(upstreamPathOf('/', { path: 'x' })).toBe('/x');
    expect(upstreamPathOf('/api', { path: '', bare: true, query: 'a' })).toBe('/api?a');
    expect(upstreamPathOf('/', { path: '', bare: true })).toBe('/');
  });
});
