import { FakeProvider, RecordedRequest } from '../helpers/fake-provider';

/** How the provider's token endpoint behaves for now. */
export type ProviderPhase = 'normal' | 'slow' | 'failing';

/** A refresh token presented after the provider had retired it: the presenter lost the successor. */
export interface Reuse {
  connectionId: string;
  family: number;
  /** Index of the token in its family (0 = the grant's first). */
  generation: number;
  presentedAt: number;
  /** When the refresh that rotated it reached the provider, and when it was answered. */
  requestedAt: number;
  retiredAt: number;
  /** The client id of the broker process whose refresh rotated it (each process has its own). */
  rotatedBy: string;
}

interface IssuedToken {
  connectionId: string;
  family: number;
  generation: number;
  issuedAt: number;
  requestedAt?: number;
  retiredAt?: number;
  rotatedBy?: string;
}

/**
 * The fake provider as a rotating, unforgiving server (RFC 9700 §4.14.2): every refresh answers a
 * new refresh token and retires the presented one at once; a retired or revoked one is refused
 * with `invalid_grant`. Every refresh token presented is recorded with its fate, and each grant
 * (a code exchange or tokens minted for an import) is a family tied to one connection, so a reuse
 * or a grant left live after a delete can be named. `phase` makes it slow (answers within the
 * broker's timeout) or failing (503, nothing rotated) for a while.
 */
export class RotatingProvider {
  phase: ProviderPhase = 'normal';
  /** Milliseconds a token request waits in the slow phase. */
  slowMs = 1500;
  readonly reuses: Reuse[] = [];
  /** Refresh token → how many times it was presented. */
  readonly presented = new Map<string, number>();
  /** Refresh requests answered 503 by the failing phase. */
  injectedFailures = 0;
  rotations = 0;
  private readonly tokens = new Map<string, IssuedToken>();
  /** Family → its newest refresh token. */
  private readonly heads = new Map<number, string>();
  private readonly codes = new Map<string, string>();
  private families = 0;
  private counter = 0;

  private constructor(readonly fake: FakeProvider) {}

  static async start(): Promise<RotatingProvider> {
    const fake = await FakeProvider.start({ rotateRefreshTokens: true, expiresIn: 3600 });
    const provider = new RotatingProvider(fake);
    fake.onToken((req, res) => provider.handle(req, res));
    return provider;
  }

  get url(): string {
    return this.fake.url;
  }

  /** A code that exchanges into a new grant for `connectionId`. */
  codeFor(connectionId: string): string {
    const code = `code-${++this.counter}`;
    this.codes.set(code, connectionId);
    return code;
  }

  /** Tokens of a new grant for `connectionId`, as if obtained elsewhere (for `PUT`). */
  mintFor(connectionId: string): { access_token: string; refresh_token: string; family: number } {
    const family = ++this.families;
    const body = this.issue(connectionId, family, 0);
    return { ...body, family };
  }

  /** The family a refresh token belongs to. */
  familyOf(refreshToken: string): number | undefined {
    return this.tokens.get(refreshToken)?.family;
  }

  /** True when the family's newest refresh token is neither retired nor revoked. */
  familyLive(family: number): boolean {
    const head = this.heads.get(family);
    if (!head) return false;
    return !this.revoked().has(head) && this.tokens.get(head)?.retiredAt === undefined;
  }

  revoked(): Set<string> {
    return new Set(this.fake.revocations.map((r) => r.params.token ?? ''));
  }

  /** Families created for a connection, oldest first. */
  familiesOf(connectionId: string): number[] {
    const out = new Set<number>();
    for (const t of this.tokens.values()) if (t.connectionId === connectionId) out.add(t.family);
    return [...out].sort((a, b) => a - b);
  }

  get refreshes(): number {
    return this.fake.refreshRequests.length;
  }

  async close(): Promise<void> {
    await this.fake.close();
  }

  private issue(connectionId: string, family: number, generation: number) {
    const n = ++this.counter;
    const refreshToken = `rt-${family}-${generation}-${n}`;
    this.tokens.set(refreshToken, { connectionId, family, generation, issuedAt: Date.now() });
    this.heads.set(family, refreshToken);
    return { access_token: `at-${family}-${generation}-${n}`, refresh_token: refreshToken };
  }

  private async handle(req: RecordedRequest, res: import('express').Response): Promise<void> {
    const requestedAt = Date.now();
    if (this.phase === 'slow') await new Promise((r) => setTimeout(r, this.slowMs));
    if (req.params.grant_type === 'authorization_code') {
      const connectionId = this.codes.get(req.params.code ?? '');
      if (!connectionId) return void res.status(400).json({ error: 'invalid_grant' });
      this.codes.delete(req.params.code!);
      if (this.phase === 'failing') return this.fail(res);
      return void res.json({
        ...this.issue(connectionId, ++this.families, 0),
        token_type: 'Bearer',
        expires_in: 3600,
      });
    }
    if (req.params.grant_type !== 'refresh_token')
      return void res.status(400).json({ error: 'unsupported_grant_type' });
    const presented = req.params.refresh_token ?? '';
    this.presented.set(presented, (this.presented.get(presented) ?? 0) + 1);
    const token = this.tokens.get(presented);
    if (!token) return void res.status(400).json({ error: 'invalid_grant' });
    if (token.retiredAt !== undefined) {
      this.reuses.push({
        connectionId: token.connectionId,
        family: token.family,
        generation: token.generation,
        presentedAt: Date.now(),
        requestedAt: token.requestedAt!,
        retiredAt: token.retiredAt,
        rotatedBy: token.rotatedBy ?? '',
      });
      return void res.status(400).json({ error: 'invalid_grant' });
    }
    if (this.revoked().has(presented)) return void res.status(400).json({ error: 'invalid_grant' });
    if (this.phase === 'failing') return this.fail(res);
    token.requestedAt = requestedAt;
    token.rotatedBy = clientIdOf(req);
    token.retiredAt = Date.now();
    this.rotations++;
    const next = this.issue(token.connectionId, token.family, token.generation + 1);
    res.json({ ...next, token_type: 'Bearer', expires_in: 3600 });
  }

  private fail(res: import('express').Response): void {
    this.injectedFailures++;
    res.status(503).json({ error: 'temporarily_unavailable' });
  }
}

/** The client id of a token request: HTTP Basic (client_secret_basic) or the `client_id` parameter. */
function clientIdOf(req: RecordedRequest): string {
  const basic = /^Basic (.+)$/i.exec(String(req.headers.authorization ?? ''));
  if (basic) return decodeURIComponent(Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0]!);
  return req.params.client_id ?? '';
}
