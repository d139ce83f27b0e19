import { isAllowedReturnUrl } from '../../../src/http/return-to';

const ALLOWED = ['https://app.example.com/integrations', 'https://other.example.com'];

/**
 * `return_to` path rules (docs/configuration-hardening.md): a prefix matches at a `/` boundary
 * only, and a path holding `;`, `%25` or a `.`/`..` segment (plain or percent-encoded) is refused,
 * since servers behind the app (Tomcat's `..;`, double decoders' `%252e`) read such paths as
 * something other than what the prefix check saw.
 */
describe('isAllowedReturnUrl: paths', () => {
  it.each([
    'https://app.example.com/integrations',
    'https://app.example.com/integrations/',
    'https://app.example.com/integrations/jobber',
    'https://app.example.com/integrations/a.b/c..d/.hidden?x=1;y=2',
    'https://app.example.com/integrations?next=/../x;y%25',
    'https://app.example.com/integrations#/../frag;x',
    'https://other.example.com/anything/here',
    'https://other.example.com',
  ])('allows %s', (url) => {
    expect(isAllowedReturnUrl(url, ALLOWED)).toBe(true);
  });

  it.each([
    // No `/` boundary.
    'https://app.example.com/integrations-evil',
    'https://app.example.com/integrationsx/y',
    'https://app.example.com/integration',
    // `;` anywhere in the path (path parameters, Tomcat's `..;`).
    'https://app.example.com/integrations/..;/admin',
    'https://app.example.com/integrations;/x',
    'https://app.example.com/integrations/x;jsessionid=1',
    // `%25`: a second decoding would make something else of it.
    'https://app.example.com/integrations/%252e%252e/admin',
    'https://app.example.com/integrations/%25',
    'https://app.example.com/integrations/%2525',
    // Dot segments, plain (which the URL parser would quietly resolve) or encoded.
    'https://app.example.com/integrations/../admin',
    'https://app.example.com/integrations/./x',
    'https://app.example.com/integrations/x/..',
    'https://app.example.com/integrations/x/.',
    'https://app.example.com/integrations/%2e%2e/admin',
    'https://app.example.com/integrations/%2E%2E/admin',
    'https://app.example.com/integrations/.%2e/admin',
    'https://app.example.com/integrations/%2e/x',
    'https://other.example.com/a/../b',
    'https://other.example.com/./b',
  ])('refuses %s', (url) => {
    expect(isAllowedReturnUrl(url, ALLOWED)).toBe(false);
  });
});
