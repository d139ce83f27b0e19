import { loadConfig } from '../../src/config/load-config';
import { TEST_RETURN_ORIGIN, baseEnv } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { startFlow } from '../helpers/flow-steps';

/**
 * URL schemes and host names are case-insensitive (RFC 3986 §3.1, §3.2.2): `HTTPS://` is https,
 * and must give the Secure cookie and HSTS exactly as `https://` does.
 */
describe('PUBLIC_URL read case-insensitively', () => {
  it.each([
    ['HTTPS://Connect.Example.COM', 'https://connect.example.com'],
    ['Https://connect.example.com/', 'https://connect.example.com'],
    ['HTTP://127.0.0.1:3000//', 'http://127.0.0.1:3000'],
    ['https://Connect.Example.com/Broker/', 'https://connect.example.com/Broker'],
  ])('normalises %s to %s', (raw, normalised) => {
    expect(loadConfig(baseEnv(3000, { PUBLIC_URL: raw })).publicUrl).toBe(normalised);
  });

  describe('a broker with PUBLIC_URL=HTTPS://…', () => {
    const t = useBrokerOnRedis({ PUBLIC_URL: 'HTTPS://Connect.Example.COM' });

    it('sets a Secure session cookie, sends HSTS, and names the lower-case redirect URI', async () => {
      const { auth, authorizeUrl } = await startFlow(
        t.broker,
        new TestBrowser(),
        'jobber',
        'acct-upper-https',
        {
          return_to: `${TEST_RETURN_ORIGIN}/integrations`,
        },
      );
      expect(auth.setCookies).toHaveLength(1);
      expect(auth.setCookies[0]).toMatch(/;\s*Secure(;|$)/i);
      expect(auth.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(authorizeUrl.searchParams.get('redirect_uri')).toBe(
        'https://connect.example.com/callback/jobber',
      );
    });

    it('sends HSTS on /healthz too', async () => {
      const res = await fetch(`${t.broker.publicUrl}/healthz`);
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    });
  });
});
