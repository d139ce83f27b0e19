import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_IN_PROVIDERS } from '../../../src/providers/catalogue';
import { loadProviderRegistry } from '../../../src/providers/load-registry';
import { problemsThrownBy as problemsOf } from '../../helpers/startup-refusal';

/** `api_base_url` and `api_headers`: the proxy's upstream and its extra headers, checked at start-up. */
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'api-base-url-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(env: Record<string, string> = {}, providers?: unknown[]) {
  let providersFile: string | undefined;
  if (providers) {
    providersFile = join(dir, `p-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(providersFile, JSON.stringify({ providers }));
  }
  return loadProviderRegistry({
    providersFile,
    publicUrl: 'https://connect.example.com',
    allowInsecureProviderUrls: false,
    keepaliveAfterSeconds: undefined,
    env,
  });
}

describe('api_base_url and api_headers', () => {
  it('sets an https api_base_url for every built-in provider, with a source beside it', () => {
    for (const entry of BUILT_IN_PROVIDERS) {
      expect({ id: entry.id, base: entry.api_base_url }).toEqual({
        id: entry.id,
        base: expect.stringMatching(/^https:\/\//),
      });
      expect(entry.docs_url).toMatch(/^https:\/\//);
    }
    expect(load().get('jobber')!.api_headers).toEqual({ 'X-JOBBER-GRAPHQL-VERSION': '2025-04-16' });
  });

  it('takes <PROVIDER>_API_BASE_URL over the catalogue, without a trailing slash', () => {
    const registry = load({ BEXIO_API_BASE_URL: 'http://127.0.0.1:8080/sandbox/' });
    expect(registry.get('bexio')!.api_base_url).toBe('http://127.0.0.1:8080/sandbox');
  });

  it.each([
    ['not a URL', 'nope', /BEXIO_API_BASE_URL: not a URL/],
    [
      'plain http off loopback',
      'http://api.example.com',
      /BEXIO_API_BASE_URL: http:\/\/ is allowed only for loopback/,
    ],
    [
      'a query',
      'https://api.example.com/v1?key=x',
      /BEXIO_API_BASE_URL: must be an http\(s\) URL without credentials, query or fragment/,
    ],
    [
      'credentials',
      'https://user:pw@api.example.com',
      /BEXIO_API_BASE_URL: must be an http\(s\) URL without credentials/,
    ],
  ])('refuses a variable holding %s, naming it', (_name, value, message) => {
    const problems = problemsOf(() => load({ BEXIO_API_BASE_URL: value }));
    expect(problems.join('\n')).toMatch(message);
    expect(problems.join('\n')).not.toContain('pw@');
  });

  it.each([
    [
      'a reserved header',
      { Authorization: 'x' },
      /field "api_headers\.Authorization": is set by the proxy itself/,
    ],
    ['a hop-by-hop header', { Connection: 'close' }, /field "api_headers\.Connection"/],
    ['a bad header name', { 'Bad Name': 'x' }, /field "api_headers\.Bad Name": must be an HTTP header name/],
    [
      'a value with a line break',
      { 'X-Ok': 'a\r\nInjected: 1' },
      /field "api_headers\.X-Ok": must be a header value/,
    ],
  ])('refuses PROVIDERS_FILE api_headers with %s, naming the entry and field', (_name, headers, message) => {
    const problems = problemsOf(() =>
      load({}, [
        {
          id: 'acme',
          authorization_url: 'https://a.example/a',
          token_url: 'https://a.example/t',
          api_headers: headers,
        },
      ]),
    );
    expect(problems.join('\n')).toMatch(/provider "acme" \(entry 1\)/);
    expect(problems.join('\n')).toMatch(message);
  });

  it('refuses a PROVIDERS_FILE api_base_url with a fragment', () => {
    const problems = problemsOf(() =>
      load({}, [
        {
          id: 'acme',
          authorization_url: 'https://a.example/a',
          token_url: 'https://a.example/t',
          api_base_url: 'https://api.a.example/#x',
        },
      ]),
    );
    expect(problems.join('\n')).toMatch(/field "api_base_url": must carry no credentials, query or fragment/);
  });
});
