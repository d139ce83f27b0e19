import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load-config';
import { loadProviderRegistry } from '../../src/providers/load-registry';
import { baseEnv } from '../helpers/broker-harness';
import { problemsThrownBy, runBrokerWith } from '../helpers/startup-refusal';

/** The start-up path main.ts takes: configuration, then the provider registry. */
function load(env: Record<string, string | undefined>) {
  const config = loadConfig({ ...baseEnv(3000), PUBLIC_URL: 'https://connect.example.com', ...env });
  return loadProviderRegistry(config);
}

const problemsOf = (env: Record<string, string | undefined>): string[] => problemsThrownBy(() => load(env));

const CREDENTIALS = { JOBBER_CLIENT_ID: 'id', JOBBER_CLIENT_SECRET: 'jobber-client-secret-value' };

/**
 * RFC 9700 §2.6 / RFC 6749 §3.2: the token endpoint (and every other provider endpoint) is reached
 * over TLS only. A plain http:// endpoint that is not loopback stops start-up with a line naming
 * the variable or the PROVIDERS_FILE field, unless ALLOW_INSECURE_PROVIDER_URLS=true says so.
 */
describe('insecure provider URLs', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ob-insecure-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['AUTHORIZATION_URL', 'TOKEN_URL', 'REVOCATION_URL'])(
    'refuses an http:// JOBBER_%s on a public host, naming the variable',
    (suffix) => {
      const problems = problemsOf({
        ...CREDENTIALS,
        [`JOBBER_${suffix}`]: 'http://provider.example.com/oauth/x',
      });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`JOBBER_${suffix}`);
      expect(problems[0]).toContain('ALLOW_INSECURE_PROVIDER_URLS');
      expect(problems.join('\n')).not.toContain('jobber-client-secret-value');
    },
  );

  it('refuses an http:// api-key verify URL, naming the variable', () => {
    const problems = problemsOf({
      PROCESS_STREET_AUTH_MODE: 'api_key',
      PROCESS_STREET_API_KEY_VERIFY_URL: 'http://api.example.com/me',
    });
    expect(problems.join('\n')).toContain('PROCESS_STREET_API_KEY_VERIFY_URL');
  });

  it('refuses an http:// endpoint in PROVIDERS_FILE, naming the entry and the field', () => {
    const file = join(dir, 'providers.json');
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          {
            id: 'acme',
            authorization_url: 'https://acme.example/authorize',
            token_url: 'http://acme.example/token',
          },
        ],
      }),
    );
    const problems = problemsOf({ PROVIDERS_FILE: file });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('acme');
    expect(problems[0]).toContain('token_url');
  });

  it.each([
    'http://localhost.evil.example/token',
    'http://127.0.0.1.nip.io/token',
    'http://10.0.0.5/token',
    'http://192.168.1.10/token',
    'http://0.0.0.0/token',
    'http://[::ffff:8.8.8.8]/token',
    'http://[fe80::1]/token',
  ])('counts %s as not loopback', (url) => {
    expect(problemsOf({ ...CREDENTIALS, JOBBER_TOKEN_URL: url }).join('\n')).toContain('JOBBER_TOKEN_URL');
  });

  it.each(['ftp://provider.example.com/token', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url'])(
    'refuses %s whatever ALLOW_INSECURE_PROVIDER_URLS says',
    (url) => {
      for (const allow of ['false', 'true']) {
        expect(
          problemsOf({ ...CREDENTIALS, JOBBER_TOKEN_URL: url, ALLOW_INSECURE_PROVIDER_URLS: allow }).join(
            '\n',
          ),
        ).toContain('JOBBER_TOKEN_URL');
      }
    },
  );

  it.each([
    'http://127.0.0.1:8080/token',
    'http://127.5.6.7/token',
    'http://localhost:9/token',
    'http://[::1]:8080/token',
    'https://provider.example.com/token',
  ])('accepts %s', (url) => {
    expect(problemsOf({ ...CREDENTIALS, JOBBER_TOKEN_URL: url })).toEqual([]);
  });

  it('accepts a public http:// endpoint only with ALLOW_INSECURE_PROVIDER_URLS=true', () => {
    const env = { ...CREDENTIALS, JOBBER_TOKEN_URL: 'http://provider.example.com/token' };
    expect(problemsOf({ ...env, ALLOW_INSECURE_PROVIDER_URLS: 'true' })).toEqual([]);
    expect(load({ ...env, ALLOW_INSECURE_PROVIDER_URLS: 'true' }).get('jobber')!.token_url).toBe(
      'http://provider.example.com/token',
    );
    expect(problemsOf({ ...env, ALLOW_INSECURE_PROVIDER_URLS: 'false' })).not.toEqual([]);
  });

  it('stops the broker process before it listens, with a line naming the variable, and exits non-zero', async () => {
    const outcome = await runBrokerWith({
      ...CREDENTIALS,
      JOBBER_TOKEN_URL: 'http://provider.example.com/token',
    });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toContain('JOBBER_TOKEN_URL');
    expect(outcome.stderr).not.toContain('jobber-client-secret-value');
    expect(outcome.stdout).not.toContain('listening');
  }, 150_000);
});
