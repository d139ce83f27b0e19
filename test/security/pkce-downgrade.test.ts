import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/config-error';
import { loadProviderRegistry } from '../../src/providers/load-registry';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { TestBrowser } from '../helpers/browser';
import { callbackUrl, startFlow } from '../helpers/flow-steps';

const RETURN_TO = `${TEST_RETURN_ORIGIN}/integrations`;
const OAUTH_BUILT_INS = ['bexio', 'bonjoro', 'jobber', 'process-street', 'respond-io'];

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * RFC 9700 §2.1.1 / RFC 7636: every code flow uses PKCE with S256, also for confidential clients;
 * `plain` is never sent and cannot be configured; the verifier that reaches the token endpoint is
 * the one whose hash went out, 43+ characters of the unreserved set, new for every flow.
 */
describe('PKCE downgrade', () => {
  let dir: string;

  const t = useBrokerOnRedis((fakeUrl) => {
    dir = mkdtempSync(join(tmpdir(), 'ob-pkce-'));
    // An added provider whose authorization_params try to set the protocol parameters themselves.
    const file = join(dir, 'providers.json');
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          {
            id: 'sneaky',
            authorization_url: `${fakeUrl}/authorize`,
            token_url: `${fakeUrl}/token`,
            authorization_params: {
              code_challenge_method: 'plain',
              code_challenge: 'attacker-chosen-challenge-000000000000000000',
              state: 'attacker-state',
              redirect_uri: 'https://evil.example/callback',
              response_type: 'token',
              prompt: 'consent',
            },
          },
        ],
      }),
    );
    const env: Record<string, string> = {
      PROVIDERS_FILE: file,
      SNEAKY_CLIENT_ID: 'sneaky-client',
      SNEAKY_CLIENT_SECRET: 'sneaky-secret',
    };
    for (const id of OAUTH_BUILT_INS) Object.assign(env, providerEnv(id, fakeUrl));
    return env;
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(OAUTH_BUILT_INS)(
    '%s: sends S256, and the verifier at the token endpoint matches the challenge',
    async (id) => {
      const result = await t.broker.connect(id, `acct-pkce-${id}`, { returnTo: RETURN_TO });
      expect(result.callback.status).toBe(303);
      const q = result.authorizeUrl.searchParams;
      expect(q.getAll('code_challenge_method')).toEqual(['S256']);
      const challenge = q.get('code_challenge')!;
      expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);

      const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
      const verifier = exchange.params.code_verifier!;
      // RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
      expect(verifier).toMatch(/^[A-Za-z0-9._~-]{43,128}$/);
      expect(s256(verifier)).toBe(challenge);
      expect(verifier).not.toBe(challenge);
      // A confidential client: it authenticates and still proves possession of the verifier.
      expect(exchange.headers.authorization ?? exchange.params.client_secret).toBeTruthy();
    },
  );

  it('uses a new verifier for every flow', async () => {
    const challenges = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { authorizeUrl } = await startFlow(t.broker, new TestBrowser(), 'jobber', `acct-pkce-fresh-${i}`);
      challenges.add(authorizeUrl.searchParams.get('code_challenge')!);
    }
    expect(challenges.size).toBe(4);
  });

  it("keeps the protocol parameters when a provider's authorization_params name them", async () => {
    const browser = new TestBrowser();
    const { authorizeUrl, state } = await startFlow(t.broker, browser, 'sneaky', 'acct-sneaky', {
      return_to: RETURN_TO,
    });
    const q = authorizeUrl.searchParams;
    expect(q.getAll('code_challenge_method')).toEqual(['S256']);
    expect(q.getAll('code_challenge')).toHaveLength(1);
    expect(q.get('code_challenge')).not.toBe('attacker-chosen-challenge-000000000000000000');
    expect(q.getAll('state')).toEqual([state]);
    expect(state).not.toBe('attacker-state');
    expect(q.getAll('redirect_uri')).toEqual([`${t.broker.publicUrl}/callback/sneaky`]);
    expect(q.getAll('response_type')).toEqual(['code']);
    expect(q.get('prompt')).toBe('consent');

    const done = await browser.get(callbackUrl(t.broker, 'sneaky', { code: 'code-sneaky', state }));
    expect(done.status).toBe(303);
    const exchange = t.fake.tokenRequests[t.fake.tokenRequests.length - 1]!;
    expect(exchange.params.code).toBe('code-sneaky');
    expect(s256(exchange.params.code_verifier!)).toBe(q.get('code_challenge'));
  });

  it("ignores a code_verifier slipped into the callback query: the session's verifier is sent", async () => {
    const browser = new TestBrowser();
    const { authorizeUrl, state } = await startFlow(t.broker, browser, 'jobber', 'acct-pkce-injected', {
      return_to: RETURN_TO,
    });
    const injected = 'attacker-verifier-attacker-verifier-attacker-verifier';
    const done = await browser.get(
      callbackUrl(t.broker, 'jobber', { code: 'code-pkce-injected', state, code_verifier: injected }),
    );
    expect(done.status).toBe(303);
    const exchange = t.fake.tokenRequests.find((r) => r.params.code === 'code-pkce-injected')!;
    expect(exchange.params.code_verifier).not.toBe(injected);
    expect(s256(exchange.params.code_verifier!)).toBe(authorizeUrl.searchParams.get('code_challenge'));
  });

  it('refuses to start with pkce "plain" in PROVIDERS_FILE, naming the entry and the field', () => {
    const file = join(dir, 'plain.json');
    writeFileSync(file, JSON.stringify({ providers: [{ id: 'jobber', pkce: 'plain' }] }));
    let thrown: unknown;
    try {
      loadProviderRegistry({
        providersFile: file,
        publicUrl: 'https://connect.example.com',
        allowInsecureProviderUrls: false,
        keepaliveAfterSeconds: undefined,
        env: {},
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const problems = (thrown as ConfigError).problems.join('\n');
    expect(problems).toContain('provider "jobber"');
    expect(problems).toContain('pkce');
  });
});
