import { request } from 'node:http';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, onListener } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const PUBLIC_URL = 'https://connect.example.com';

/** A GET with headers fetch will not send (Host). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; location?: string; setCookie?: string[] }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          setCookie: res.headers['set-cookie'],
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * RFC 9700 §4.1 / §2.1: redirect_uri is always `${PUBLIC_URL}/callback/:provider`, the same in the
 * authorization and the token request; Host and X-Forwarded-* headers never shape it (a spoofed
 * Host would otherwise send the code to the attacker's server).
 */
describe('redirect_uri injection through request headers', () => {
  const t = useBrokerOnRedis({ PUBLIC_URL, TRUST_PROXY: 'loopback' });

  it('builds redirect_uri from PUBLIC_URL whatever Host and X-Forwarded-* say, even behind a trusted proxy', async () => {
    const link = await t.broker.connectLink('jobber', 'acct-host', { return_to: RETURN_TO });
    expect(link.startsWith(`${PUBLIC_URL}/auth/jobber?session=`)).toBe(true);
    const auth = await rawGet(onListener(t.broker, link), {
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '8080',
      forwarded: 'host=evil.example;proto=http',
      'x-original-url': '/callback/other',
    });
    expect(auth.status).toBe(302);
    const authorizeUrl = new URL(auth.location!);
    expect(authorizeUrl.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/callback/jobber`);

    // Finish the flow with the same cookie: the token request carries the same redirect_uri.
    const browser = new TestBrowser();
    const cookie = auth.setCookie![0]!.split(';')[0]!;
    const done = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-host', state: authorizeUrl.searchParams.get('state')! }),
      {
        cookie,
        'x-forwarded-host': 'evil.example',
      },
    );
    expect(done.status).toBe(303);
    const exchange = t.fake.tokenRequests.find((r) => r.params.code === 'code-host')!;
    expect(exchange.params.redirect_uri).toBe(`${PUBLIC_URL}/callback/jobber`);
  });

  it('answers connect links and the providers list with PUBLIC_URL, not the Host of the internal request', async () => {
    const res = await t.broker.api('/internal/providers', {
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
    });
    const jobber = res.body.providers.find((p: { id: string }) => p.id === 'jobber');
    expect(jobber.redirect_uri).toBe(`${PUBLIC_URL}/callback/jobber`);
    const link = await t.broker.api('/internal/connect-sessions', {
      method: 'POST',
      body: { provider: 'jobber', connection_id: 'acct-link-host' },
      headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' },
    });
    expect(link.body.url.startsWith(`${PUBLIC_URL}/auth/jobber?session=`)).toBe(true);
  });
});
