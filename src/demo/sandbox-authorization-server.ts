import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Request, Response, Router } from 'express';
import { escapeHtml, renderPage } from '../http/pages/render-page';
import { pageSecurityHeaders } from './page-security';

export interface SandboxOptions {
  /** The sandbox's base URL as browsers see it, e.g. `http://localhost:3000/sandbox`; also its RFC 9207 issuer. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The only redirect URI the client may use (exact match, RFC 9700 §4.1.3). */
  redirectUri: string;
  /** Seconds of life of an access token. */
  accessTokenSeconds?: number;
  now?: () => number;
}

interface PendingAuthorization {
  redirect_uri: string;
  state?: string;
  scope: string;
  code_challenge: string;
  expires_at: number;
}

interface IssuedCode {
  redirect_uri: string;
  scope: string;
  code_challenge: string;
  expires_at: number;
}

interface Grant {
  scope: string;
  user: string;
}

const CODE_SECONDS = 60;
const PENDING_SECONDS = 600;
const SCOPES: Record<string, string> = {
  profile: 'See your name and account id',
  'notes.read': 'Read your notes',
  'notes.write': 'Create and change your notes',
};

/**
 * A tiny OAuth 2.0 authorization server for the demo only (never mounted by the broker itself):
 * an authorize page with Allow and Deny, a token endpoint with the code grant (PKCE S256 required,
 * RFC 7636) and the refresh grant with rotation, revocation (RFC 7009), the `iss` authorization
 * response parameter (RFC 9207), and one API call to try a token on. State lives in memory.
 */
export function createSandboxAuthorizationServer(options: SandboxOptions): Router {
  const now = options.now ?? Date.now;
  const lifetime = options.accessTokenSeconds ?? 3600;
  const pending = new Map<string, PendingAuthorization>();
  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, Grant & { expires_at: number }>();
  const refreshTokens = new Map<string, Grant>();
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  const sweep = (): void => {
    const t = now();
    for (const map of [pending, codes, accessTokens] as Array<Map<string, { expires_at: number }>>) {
      for (const [key, value] of map) if (value.expires_at < t) map.delete(key);
    }
  };

  /** RFC 6749 §4.1.1: checks the request, then asks the user. */
  router.get('/authorize', pageSecurityHeaders(), (req, res) => {
    sweep();
    const q = req.query as Record<string, unknown>;
    const redirectUri = typeof q.redirect_uri === 'string' ? q.redirect_uri : '';
    // §4.1.2.1: with an unknown client or redirect URI, tell the user and redirect nowhere.
    if (q.client_id !== options.clientId || redirectUri !== options.redirectUri) {
      return sendSandboxPage(
        res,
        400,
        'Unknown application',
        '<p>The application or its redirect address is not registered with the sandbox.</p>',
      );
    }
    const state = typeof q.state === 'string' ? q.state : undefined;
    const back = (error: string, description: string): void =>
      res.redirect(
        302,
        withQuery(redirectUri, { error, error_description: description, state, iss: options.issuer }),
      );
    if (q.response_type !== 'code') return back('unsupported_response_type', 'only response_type=code');
    if (
      q.code_challenge_method !== 'S256' ||
      typeof q.code_challenge !== 'string' ||
      !/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge)
    ) {
      return back('invalid_request', 'PKCE with code_challenge_method=S256 is required');
    }
    const scope = typeof q.scope === 'string' && q.scope.trim() ? q.scope.trim() : 'profile';
    const unknown = scope.split(' ').filter((s) => !(s in SCOPES));
    if (unknown.length > 0) return back('invalid_scope', `unknown scope ${unknown.join(' ')}`);

    const requestId = randomBytes(16).toString('base64url');
    pending.set(requestId, {
      redirect_uri: redirectUri,
      state,
      scope,
      code_challenge: q.code_challenge,
      expires_at: now() + PENDING_SECONDS * 1000,
    });
    const items = scope
      .split(' ')
      .map((s) => `<li>${escapeHtml(SCOPES[s]!)} <code>${escapeHtml(s)}</code></li>`)
      .join('');
    const body = `<p><strong>OAuth Broker demo</strong> asks to access your Sandbox account <code>demo-user</code>:</p>
<ul>${items}</ul>
<form method="post" action="authorize">
<input type="hidden" name="request" value="${escapeHtml(requestId)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>
<p class="hint">This is the demo's built-in sandbox provider. Nothing leaves your machine.</p>`;
    sendSandboxPage(res, 200, 'Allow access to your Sandbox account?', body, 'Sandbox');
  });

  /** The user's answer: back to the client with a code, or with access_denied (§4.1.2.1). */
  router.post('/authorize', pageSecurityHeaders(), form, (req, res) => {
    sweep();
    const requestId = typeof req.body?.request === 'string' ? req.body.request : '';
    const request = pending.get(requestId);
    if (!request) {
      return sendSandboxPage(
        res,
        400,
        'This request has expired',
        '<p>Go back to the app and start connecting again.</p>',
      );
    }
    pending.delete(requestId);
    if (req.body.decision !== 'allow') {
      return res.redirect(
        302,
        withQuery(request.redirect_uri, {
          error: 'access_denied',
          error_description: 'the user said no',
          state: request.state,
          iss: options.issuer,
        }),
      );
    }
    const code = randomBytes(32).toString('base64url');
    codes.set(code, {
      redirect_uri: request.redirect_uri,
      scope: request.scope,
      code_challenge: request.code_challenge,
      expires_at: now() + CODE_SECONDS * 1000,
    });
    res.redirect(302, withQuery(request.redirect_uri, { code, state: request.state, iss: options.issuer }));
  });

  /** RFC 6749 §3.2: client authentication, then the code grant (§4.1.3) or the refresh grant (§6). */
  router.post('/token', form, (req, res) => {
    sweep();
    res.setHeader('Cache-Control', 'no-store');
    const params = (req.body ?? {}) as Record<string, unknown>;
    if (!authenticateClient(req, params, options)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="sandbox"');
      return void res.status(401).json({ error: 'invalid_client' });
    }
    const fail = (error: string, description: string): void =>
      void res.status(400).json({ error, error_description: description });

    if (params.grant_type === 'authorization_code') {
      const code = typeof params.code === 'string' ? params.code : '';
      const issued = codes.get(code);
      // A code works once (§4.1.2); a second use fails like an unknown one.
      codes.delete(code);
      if (!issued) return fail('invalid_grant', 'unknown, used or expired code');
      if (params.redirect_uri !== issued.redirect_uri)
        return fail('invalid_grant', 'redirect_uri differs from the authorization request');
      const verifier = typeof params.code_verifier === 'string' ? params.code_verifier : '';
      // RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) must equal the code_challenge.
      if (
        !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) ||
        !sameText(createHash('sha256').update(verifier).digest('base64url'), issued.code_challenge)
      ) {
        return fail('invalid_grant', 'PKCE verification failed');
      }
      return void res.json(issue({ scope: issued.scope, user: 'demo-user' }));
    }
    if (params.grant_type === 'refresh_token') {
      const presented = typeof params.refresh_token === 'string' ? params.refresh_token : '';
      const grant = refreshTokens.get(presented);
      if (!grant) return fail('invalid_grant', 'unknown or revoked refresh token');
      // Rotation: the old refresh token dies as the new one is issued (RFC 9700 §4.14.2).
      refreshTokens.delete(presented);
      return void res.json(issue(grant));
    }
    fail('unsupported_grant_type', 'authorization_code or refresh_token');
  });

  /** RFC 7009: revokes an access or refresh token; unknown tokens answer 200 too (§2.2). */
  router.post('/revoke', form, (req, res) => {
    const params = (req.body ?? {}) as Record<string, unknown>;
    if (!authenticateClient(req, params, options))
      return void res.status(401).json({ error: 'invalid_client' });
    const token = typeof params.token === 'string' ? params.token : '';
    refreshTokens.delete(token);
    accessTokens.delete(token);
    res.status(200).end();
  });

  /**
   * The grant behind a request's bearer token (RFC 6750 §2.1), or undefined once it has answered
   * 401 invalid_token, or 403 insufficient_scope when `scope` is not granted (§3.1).
   */
  const authorize = (req: Request, res: Response, scope?: string): Grant | undefined => {
    const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const grant = accessTokens.get(token);
    if (!grant || grant.expires_at < now()) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      return void res.status(401).json({ error: 'invalid_token' });
    }
    if (scope && !grant.scope.split(' ').includes(scope)) {
      res.setHeader('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${scope}"`);
      return void res.status(403).json({ error: 'insufficient_scope', scope });
    }
    return grant;
  };

  /** A protected resource to try an access token on. */
  router.get('/api/me', (req, res) => {
    const grant = authorize(req, res);
    if (grant) res.json({ id: grant.user, name: 'Demo User', scopes: grant.scope.split(' ') });
  });

  /** An API worth proxying: the user's notes, in memory (`notes.read`, `notes.write`). */
  const notes = new Map<string, Array<{ id: number; text: string; created_at: string }>>();
  router.get('/api/notes', (req, res) => {
    const grant = authorize(req, res, 'notes.read');
    if (grant) res.json({ notes: notes.get(grant.user) ?? [] });
  });
  router.post('/api/notes', express.json({ limit: '16kb' }), (req, res) => {
    const grant = authorize(req, res, 'notes.write');
    if (!grant) return;
    const text = (req.body as { text?: unknown } | undefined)?.text;
    if (typeof text !== 'string' || text.length === 0 || text.length > 1000)
      return void res
        .status(400)
        .json({ error: 'invalid_request', error_description: '`text`: 1-1000 characters' });
    const list = notes.get(grant.user) ?? [];
    const note = { id: list.length + 1, text, created_at: new Date(now()).toISOString() };
    list.push(note);
    notes.set(grant.user, list.slice(-100));
    res.status(201).json(note);
  });

  function issue(grant: Grant): Record<string, unknown> {
    const accessToken = `sbx_at_${randomBytes(24).toString('base64url')}`;
    const refreshToken = `sbx_rt_${randomBytes(24).toString('base64url')}`;
    accessTokens.set(accessToken, { ...grant, expires_at: now() + lifetime * 1000 });
    refreshTokens.set(refreshToken, grant);
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: lifetime,
      refresh_token: refreshToken,
      scope: grant.scope,
    };
  }

  return router;
}

/** client_secret_basic (RFC 6749 §2.3.1, form-encoded id and secret) or client_secret_post. */
function authenticateClient(req: Request, params: Record<string, unknown>, options: SandboxOptions): boolean {
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  let id: unknown = params.client_id;
  let secret: unknown = params.client_secret;
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    id = safeDecode(decoded.slice(0, colon));
    secret = safeDecode(decoded.slice(colon + 1));
  }
  return (
    typeof id === 'string' &&
    typeof secret === 'string' &&
    sameText(id, options.clientId) &&
    sameText(secret, options.clientSecret)
  );
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return '';
  }
}

function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function withQuery(base: string, params: Record<string, string | undefined>): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

function sendSandboxPage(
  res: Response,
  status: number,
  title: string,
  body: string,
  badge = 'Sandbox',
): void {
  res
    .status(status)
    .type('html')
    .send(renderPage({ title, tone: status < 400 ? 'neutral' : 'err', badge, body }));
}
