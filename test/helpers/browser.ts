/**
 * A minimal browser for HTTP-level flow tests: keeps cookies per host, follows nothing by itself
 * (each test sees every redirect), and answers status, headers, location and body.
 */
export interface PageResponse {
  status: number;
  headers: Headers;
  location: string | null;
  body: string;
  setCookies: string[];
}

export class TestBrowser {
  private readonly cookies = new Map<string, string>();

  async get(url: string, headers: Record<string, string> = {}): Promise<PageResponse> {
    return this.request(url, { method: 'GET', headers });
  }

  async postForm(url: string, form: Record<string, string>): Promise<PageResponse> {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  cookieHeader(): string {
    return [...this.cookies.entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  hasCookie(name: string): boolean {
    return this.cookies.has(name);
  }

  clearCookies(): void {
    this.cookies.clear();
  }

  private async request(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ): Promise<PageResponse> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader();
    const response = await fetch(url, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(15000),
    });
    const setCookies = response.headers.getSetCookie();
    for (const cookie of setCookies) {
      const [pair] = cookie.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    return {
      status: response.status,
      headers: response.headers,
      location: response.headers.get('location'),
      body: await response.text(),
      setCookies,
    };
  }
}

export interface OpenedLink {
  auth: PageResponse;
  /** Where /auth sent the browser: the provider's authorization request. */
  authorizeUrl: URL;
  state: string;
}

/** Opens a connect link (`/auth/…`) in `browser`: it must redirect to the provider, else this throws. */
export async function openConnectLink(browser: TestBrowser, url: string): Promise<OpenedLink> {
  const auth = await browser.get(url);
  if (auth.status !== 302 || !auth.location)
    throw new Error(`/auth answered ${auth.status}: ${auth.body.slice(0, 200)}`);
  const authorizeUrl = new URL(auth.location);
  return { auth, authorizeUrl, state: authorizeUrl.searchParams.get('state') ?? '' };
}

/** The provider's answer a fake sends back for `connectionId`: `code-<id>` and the flow's state. */
export function callbackQueryFor(
  connectionId: string,
  state: string,
  extra: Record<string, string> = {},
): string {
  return new URLSearchParams({ code: `code-${connectionId}`, state, ...extra }).toString();
}
