import { escapeHtml, renderPage } from './render-page';

const CLOSE_HINT = '<p class="hint">You can close this window and go back to the app you came from.</p>';

export function connectedPage(displayName: string, connectionId: string): string {
  return renderPage({
    title: `${displayName} is connected`,
    tone: 'ok',
    badge: 'Connected',
    // The connection id is the app's own reference, not the user's account at the provider.
    body: `<p>The app you came from can now use your ${escapeHtml(displayName)} account.</p>${CLOSE_HINT}<p class="hint">Connection reference: <code>${escapeHtml(connectionId)}</code></p>`,
  });
}

/** Why a connect step failed, in words, with the next step; the code rides along for support. */
const FAILURES: Record<string, { title: string; text: string }> = {
  missing_session: {
    title: 'This connect link is incomplete',
    text: 'The link has no connect session. Go back to the app and start connecting again.',
  },
  invalid_session: {
    title: 'This connect link no longer works',
    text: 'Connect links work once and expire after a few minutes. Go back to the app and start connecting again to get a new link.',
  },
  wrong_provider: {
    title: 'This connect link is for another service',
    text: 'The link was opened under the wrong address. Go back to the app and open the link it gave you as it is.',
  },
  unknown_flow: {
    title: 'We could not match this sign-in',
    text: 'The answer from the provider does not belong to a connection started in this browser, or it was used already. Go back to the app and start connecting again.',
  },
  access_denied: {
    title: 'Connection cancelled',
    text: 'Access was not granted, so nothing was connected. Whenever you want to connect after all, go back to the app and start connecting again.',
  },
  invalid_issuer: {
    title: 'The sign-in answer could not be trusted',
    text: 'The answer did not come from the expected authorization server, so it was refused. Start connecting again from the app.',
  },
  provider_error: {
    title: 'The provider reported a problem',
    text: 'The provider could not complete the sign-in. Start connecting again from the app; if it keeps happening, contact support.',
  },
  token_exchange_failed: {
    title: 'The provider refused the connection',
    text: 'The sign-in could not be completed. Start connecting again from the app.',
  },
  provider_unavailable: {
    title: 'The provider is not answering',
    text: 'The provider could not be reached. Please try again in a few minutes.',
  },
  store_unavailable: {
    title: 'The service is briefly unavailable',
    text: 'Your connection could not be saved right now. Please try again in a minute.',
  },
  invalid_form: {
    title: 'This form has expired',
    text: 'The form was not sent from the page we showed in this browser, or it was already used. Go back to the app and start connecting again.',
  },
  key_tries_used_up: {
    title: 'Too many keys were refused',
    text: 'This connect link has been used up after several keys were not accepted. Check the key in your account settings, then go back to the app and start connecting again.',
  },
  rate_limited: {
    title: 'Too many attempts',
    text: 'Please wait a minute, then try again.',
  },
};

export function failurePage(code: string, displayName?: string): string {
  const failure = FAILURES[code] ?? {
    title: 'Something went wrong',
    text: 'Start connecting again from the app.',
  };
  return renderPage({
    title: failure.title,
    tone: 'err',
    // The service's name first, so the page says at a glance which connection this is about.
    badge: displayName ? `${displayName} · not connected` : 'Not connected',
    body: `<p>${escapeHtml(failure.text)}</p><p class="hint">Reference for support: <code>${escapeHtml(code)}</code></p>`,
  });
}

export interface ApiKeyFormOptions {
  provider: string;
  displayName: string;
  flowId: string;
  csrf: string;
  error?: string;
}

/** The small form that connects an API-key provider, posted back to the same path. */
export function apiKeyFormPage(options: ApiKeyFormOptions): string {
  const error = options.error
    ? `<p class="error" role="alert" id="key-error">${escapeHtml(options.error)}</p>`
    : '';
  const describedBy = options.error
    ? ' aria-describedby="key-error key-hint"'
    : ' aria-describedby="key-hint"';
  return renderPage({
    title: `Connect ${options.displayName}`,
    badge: 'API key',
    body: `<p>${escapeHtml(options.displayName)} connects with an API key. Paste a key from your ${escapeHtml(options.displayName)} account settings.</p>
${error}
<form method="post" action="/auth/${escapeHtml(options.provider)}" autocomplete="off">
<input type="hidden" name="flow" value="${escapeHtml(options.flowId)}">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="api_key">API key</label>
<input type="password" id="api_key" name="api_key" required maxlength="4096" spellcheck="false" autocapitalize="off"${describedBy}>
<p class="hint" id="key-hint">The key is stored encrypted and used only to reach ${escapeHtml(options.displayName)} for you.</p>
<button type="submit">Connect ${escapeHtml(options.displayName)}</button>
</form>`,
  });
}

/** A browser route named a provider this broker does not have. */
export function unknownProviderPage(id: string): string {
  return renderPage({
    title: 'Unknown service',
    tone: 'err',
    badge: 'Not found',
    body: `<p>There is no provider "${escapeHtml(id.slice(0, 64))}" here. Check the link the app gave you.</p>`,
  });
}

/** A browser route named a provider that is known but has no client credentials set. */
export function providerNotEnabledPage(provider: { display_name: string; env_prefix: string }): string {
  return renderPage({
    title: `${provider.display_name} is not set up`,
    tone: 'err',
    badge: 'Not enabled',
    body: `<p>Connecting ${escapeHtml(provider.display_name)} is not enabled on this server. An operator enables it by setting <code>${provider.env_prefix}_CLIENT_ID</code> and <code>${provider.env_prefix}_CLIENT_SECRET</code>.</p><p class="hint">Go back to the app and let its support team know, or try again later.</p>`,
  });
}

/** Any other address on the public listener, for a browser. */
export function notFoundPage(): string {
  return renderPage({
    title: 'Page not found',
    tone: 'err',
    badge: 'Not found',
    body: '<p>There is nothing at this address.</p>',
  });
}
