import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

export interface OidcClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
}

export interface OidcServerSettings {
  clients: OidcClient[];
  /** Seconds an access token lives; 60 by default. */
  accessTokenTtl?: number;
}

export interface RefreshTokenState {
  value: string;
  grantId: string;
  accountId: string;
  /** As the server sees it now. */
  state: 'live' | 'consumed' | 'gone';
}

export interface OidcServerState {
  refreshTokens: RefreshTokenState[];
  accessTokens: Array<{ value: string; grantId: string; accountId: string }>;
  revokedGrants: string[];
  grants: Array<{ grant_type?: string; outcome: 'success' | 'error'; error?: string }>;
  requests: Array<{ method: string; path: string }>;
}

/**
 * The test's handle on oidc-provider running in a child process (test/e2e/support/oidc-server.mjs):
 * its issuer and endpoints, what it recorded, and plain OAuth calls made straight to it.
 */
export class OidcServer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** The child's stderr (oidc-provider's development warnings), for a failing test's message. */
  stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly issuer: string,
  ) {
    child.on('message', (message: { id?: number; result?: unknown; error?: string }) => {
      const waiter = message.id !== undefined ? this.pending.get(message.id) : undefined;
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.error) waiter.reject(new Error(message.error));
      else waiter.resolve(message.result);
    });
  }

  static async start(settings: OidcServerSettings): Promise<OidcServer> {
    const child = fork(join(__dirname, 'oidc-server.mjs'), [], {
      env: { ...process.env, OIDC_TEST_SETTINGS: JSON.stringify(settings), NODE_OPTIONS: '' },
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
    const issuer = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`oidc-server did not start in 20 s\n${stderr}`)),
        20_000,
      );
      child.on('message', (m: { type?: string; issuer?: string }) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m.issuer!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`oidc-server exited with ${code}\n${stderr}`));
      });
    });
    const server = new OidcServer(child, issuer);
    child.stderr!.on('data', (chunk) => (server.stderr += String(chunk)));
    server.stderr = stderr;
    return server;
  }

  get authorizationUrl(): string {
    return `${this.issuer}/auth`;
  }
  get tokenUrl(): string {
    return `${this.issuer}/token`;
  }
  get revocationUrl(): string {
    return `${this.issuer}/token/revocation`;
  }
  get userinfoUrl(): string {
    return `${this.issuer}/me`;
  }

  state(): Promise<OidcServerState> {
    return this.call('state') as Promise<OidcServerState>;
  }

  /** GET /me with a bearer token: the status and, on 200, the claims. */
  async userinfo(accessToken: string): Promise<{ status: number; body: any }> {
    const response = await fetch(this.userinfoUrl, {
      headers: { authorization: `Bearer ${accessToken}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  /** A refresh-token grant made straight to the server with a client's credentials. */
  async refresh(client: OidcClient, refreshToken: string): Promise<{ status: number; body: any }> {
    const basic = Buffer.from(
      `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`,
    ).toString('base64');
    const response = await fetch(this.tokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, body: await response.json() };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  private call(cmd: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd });
    });
  }
}
