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
