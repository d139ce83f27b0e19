import { escapeHtml, renderPage } from '../http/pages/render-page';

export interface DemoPageContext {
  connectionId: string;
  /** The token command as shown on a page: the key itself stays in the terminal. */
  tokenCommand: string;
  /** The sandbox API's notes through the proxy: read them, add one (the key stays in the terminal). */
  proxyCommand: string;
  proxyPostCommand: string;
}

export function demoStartPage(ctx: DemoPageContext): string {
  return renderPage({
    title: 'OAuth Broker demo',
    badge: 'Demo',
    body: `<p>This broker runs with a built-in <strong>Sandbox</strong> provider, a tiny OAuth 2.0 server inside this process.</p>
<p>Connect a Sandbox account as <code>${escapeHtml(ctx.connectionId)}</code>: you will see the provider's consent page, where you can allow or deny. Then fetch the token from the internal API.</p>
<form method="get" action="/demo/connect">
<button type="submit">Connect a Sandbox account</button>
</form>
<p class="hint">Each click asks the internal API for a fresh single-use connect link (<code>POST /internal/connect-sessions</code>).</p>`,
  });
}

export function demoConnectedPage(ctx: DemoPageContext): string {
  return renderPage({
    title: 'Sandbox is connected',
    tone: 'ok',
    badge: 'Connected',
    body: `<p>The broker stored the Sandbox tokens of <code>${escapeHtml(ctx.connectionId)}</code>, encrypted. Your services now fetch a fresh access token from the internal API whenever they need one:</p>
<pre>${escapeHtml(ctx.tokenCommand)}</pre>
<p class="hint">The internal API key is printed in the terminal that runs the demo. Add <code>?force_refresh=true</code> to make the broker refresh (the sandbox rotates refresh tokens).</p>
<h2>Try it through the proxy</h2>
<p>Or never touch the token: the broker calls the Sandbox API for you, with the connection's credentials added (<code>/internal/proxy/…</code>). Add a note, then read them:</p>
<pre>${escapeHtml(ctx.proxyPostCommand)}</pre>
<pre>${escapeHtml(ctx.proxyCommand)}</pre>
<form method="get" action="/demo/connect">
<button type="submit" class="secondary">Connect again</button>
</form>`,
  });
}

export function demoFailedPage(error: string): string {
  const denied = error === 'access_denied';
  return renderPage({
    title: denied ? 'Connection cancelled' : 'The connection failed',
    tone: 'err',
    badge: 'Not connected',
    body: `<p>${denied ? 'You chose Deny, so the broker stored nothing.' : 'The broker could not complete the connection.'}</p>
<p class="hint">Reference: <code>${escapeHtml(error)}</code></p>
<form method="get" action="/demo/connect">
<button type="submit">Try again</button>
</form>`,
  });
}

export function demoUnavailablePage(): string {
  return renderPage({
    title: 'The broker is not ready',
    tone: 'err',
    badge: 'Demo',
    body: `<p>The internal API did not answer (is Redis still running?). Look at the terminal, then try again.</p>
<form method="get" action="/demo/connect">
<button type="submit">Try again</button>
</form>`,
  });
}
