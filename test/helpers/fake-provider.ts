import express, { Request, Response } from 'express';
import { Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
  /** Form or JSON body, parsed. */
  params: Record<string, string>;
  at: number;
}

export interface TokenIssue {
  access_token: string;
  refresh_token?: string;
}

export type TokenHandler = (
  req: RecordedRequest,
  res: Response,
  provider: FakeProvider,
) => void | Promise<void>;

export interface FakeProviderOptions {
  /** Seconds of life announced in expires_in; null leaves expires_in out. */
  expiresIn?: number | null;
  /** Issue access tokens as JWTs whose `exp` is the expiry (Jobber). */
  jwtAccessTokens?: boolean;
  /** The old refresh token dies when a new one is issued. */
  rotateRefreshTokens?: boolean;
  /** Milliseconds before the token endpoint answers. */
  tokenDelayMs?: number;
  /** Milliseconds before the revocation endpoint answers. */
  revokeDelayMs?: number;
  /** Issuer to put in `iss` when the fake authorizes. */
  issuer?: string;
  /** `scope` of token responses; undefined leaves it out. */
  grantedScope?: string;
}

/**
 * A stand-in for a provider's endpoints on loopback, recording every request it receives.
 * By default it behaves like a well-mannered OAuth 2.0 server; tests replace the token handler
 * to emulate a provider's quirks or failures.
 */
export class FakeProvider {
  readonly requests: RecordedRequest[] = [];
  readonly issued: TokenIssue[] = [];
  /** Refresh tokens that still work. */
  readonly liveRefreshTokens = new Set<string>();
  private server?: Server;
  private counter = 0;
  private tokenHandler?: TokenHandler;
  url = '';

  constructor(public options: FakeProviderOptions = {}) {}

  static async start(options: FakeProviderOptions = {}): Promise<FakeProvider> {
    const provider = new FakeProvider(options);
    await provider.listen();
    return provider;
  }

  get tokenRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/token');
  }

  get refreshRequests(): RecordedRequest[] {
    return this.tokenRequests.filter((r) => r.params.grant_type === 'refresh_token');
  }

  get revocations(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/revoke');
  }

  /** Replaces the token endpoint's behaviour; undefined restores the default. */
  onToken(handler: TokenHandler | undefined): void {
    this.tokenHandler = handler;
  }

  /** Answers the next `count` token requests with this status and body, then behaves again. */
  failNext(count: number, status: number, body: string | object, contentType = 'application/json'): void {
    let left = count;
    const previous = this.tokenHandler;
    this.tokenHandler = (req, res, provider) => {
      if (left > 0) {
        left -= 1;
        if (left === 0) this.tokenHandler = previous;
        res
          .status(status)
          .type(contentType)
          .send(typeof body === 'string' ? body : JSON.stringify(body));
        return;
      }
      return (previous ?? defaultTokenHandler)(req, res, provider);
    };
  }

  /** Mints tokens as the default handler does (for handlers that want the usual answer). */
  mint(): Record<string, unknown> {
    this.counter += 1;
    const n = this.counter;
    const lifetime = this.options.expiresIn === undefined ? 3600 : this.options.expiresIn;
    const accessToken = this.options.jwtAccessTokens
      ? fakeJwt({ sub: `user-${n}`, exp: Math.floor(Date.now() / 1000) + (lifetime ?? 3600) })
      : `at-${n}-${Math.random().toString(36).slice(2, 10)}`;
    const refreshToken = `rt-${n}-${Math.random().toString(36).slice(2, 10)}`;
    this.issued.push({ access_token: accessToken, refresh_token: refreshToken });
    this.liveRefreshTokens.add(refreshToken);
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'Bearer',
      refresh_token: refreshToken,
    };
    if (lifetime !== null && !this.options.jwtAccessTokens) body.expires_in = lifetime;
    if (this.options.grantedScope !== undefined) body.scope = this.options.grantedScope;
    return body;
  }

  async listen(): Promise<void> {
    const app = express();
    app.use(express.text({ type: '*/*', limit: '1mb' }));
    app.use((req, _res, next) => {
      const rawBody = typeof req.body === 'string' ? req.body : '';
      this.requests.push({
        path: req.path,
        method: req.method,
        headers: { ...req.headers },
        rawBody,
        params: parseParams(req, rawBody),
        at: Date.now(),
      });
      next();
    });
    app.get('/authorize', (req, res) => {
      // Approves at once: back to redirect_uri with a code, the state, and `iss` if configured.
      const redirect = new URL(String(req.query.redirect_uri));
      redirect.searchParams.set('code', `code-${Date.now()}`);
      redirect.searchParams.set('state', String(req.query.state));
      if (this.options.issuer) redirect.searchParams.set('iss', this.options.issuer);
      res.redirect(302, redirect.toString());
    });
    app.post('/token', async (req, res) => {
      const recorded = this.requests[this.requests.length - 1]!;
      if (this.options.tokenDelayMs) await new Promise((r) => setTimeout(r, this.options.tokenDelayMs));
      await (this.tokenHandler ?? defaultTokenHandler)(recorded, res, this);
    });
    app.post('/revoke', async (_req, res) => {
      if (this.options.revokeDelayMs) await new Promise((r) => setTimeout(r, this.options.revokeDelayMs));
      res.status(200).end();
    });
    app.all('/verify', (req, res) => {
      const key = String(req.headers['x-api-key'] ?? req.headers.authorization ?? '');
      if (key.includes('good-key')) return res.json({ ok: true });
      if (key.includes('slow-key')) return void setTimeout(() => res.json({ ok: true }), 5000);
      if (key.includes('broken-key')) return res.status(500).send('oops');
      res.status(401).json({ error: 'unauthorized' });
    });
    app.get('/userinfo', (req, res) => {
      const token = String(req.headers.authorization ?? '').replace(/^Bearer /i, '');
      if (this.issued.some((t) => t.access_token === token)) return res.json({ sub: 'user' });
      res.status(401).end();
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The usual server: codes always work; refresh tokens work while live; rotation if configured. */
export const defaultTokenHandler: TokenHandler = (req, res, provider) => {
  if (req.params.grant_type === 'authorization_code') {
    if (!req.params.code) return void res.status(400).json({ error: 'invalid_request' });
    return void res.json(provider.mint());
  }
  if (req.params.grant_type === 'refresh_token') {
    const presented = req.params.refresh_token ?? '';
    if (!provider.liveRefreshTokens.has(presented))
      return void res.status(400).json({ error: 'invalid_grant' });
    const body = provider.mint();
    if (provider.options.rotateRefreshTokens) provider.liveRefreshTokens.delete(presented);
    else {
      // Without rotation the old refresh token stays and no new one is sent.
      provider.liveRefreshTokens.delete(body.refresh_token as string);
      delete body.refresh_token;
    }
    return void res.json(body);
  }
  res.status(400).json({ error: 'unsupported_grant_type' });
};

export function fakeJwt(payload: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.sig`;
}

function parseParams(req: Request, raw: string): Record<string, string> {
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/json')) {
    try {
      return JSON.parse(raw) as Record<string, string>;
    } catch {
      return {};
    }
  }
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
  return Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, String(v)]));
}
