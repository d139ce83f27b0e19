// A minimal service that uses the broker through @oauth-broker/client: a connect link per user,
// the ?connected= / ?error= return, then a fresh token for a call to the provider's API.
// Against the demo (docs/client.md), with one key for both:
//   INTERNAL_API_KEYS=<32+ characters> ALLOWED_RETURN_URLS=http://localhost:4000 npm run demo
//   BROKER_API_KEY=<the same key> node examples/connect-service/server.mjs   # then open http://localhost:4000
import { createServer } from 'node:http';
import { BrokerClient, BrokerProblemError } from '@oauth-broker/client';

const port = Number(process.env.PORT || 4000);
const self = process.env.SERVICE_URL || `http://localhost:${port}`; // where browsers reach this service
const provider = process.env.PROVIDER || 'sandbox';
const apiPath = process.env.API_PATH || 'me'; // what to call below the provider's api_base_url
const broker = new BrokerClient({
  baseUrl: process.env.BROKER_URL || 'http://127.0.0.1:3001', // the broker's internal listener
  apiKey: process.env.BROKER_API_KEY, // one of its INTERNAL_API_KEYS
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, status, html) =>
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
const connectLink = (user) =>
  `<a href="/connect?user=${encodeURIComponent(user)}">Connect ${escape(provider)}</a>`;

/** A fresh token for the user's connection, then one call to the provider's API with it. */
async function callProvider(user) {
  const token = await broker.getToken(provider, user, { minValidity: 60 });
  const headers =
    token.auth_mode === 'oauth2' ? { authorization: `Bearer ${token.access_token}` } : token.headers;
  const { api_base_url: base } = (await broker.listProviders()).find((p) => p.id === provider);
  const answer = await fetch(`${base}/${apiPath}`, { headers });
  return { status: answer.status, body: await answer.text() };
}

createServer(async (req, res) => {
  const url = new URL(req.url, self);
  const user = url.searchParams.get('user') || 'alice';
  try {
    if (url.pathname === '/') return page(res, 200, `<p>${connectLink(user)}</p>`);
    // A real service knows its user from its own login session; this one carries the user in
    // return_to, to which the broker adds connected= and connection_id=, or error=.
    if (url.pathname === '/connect') {
      const session = await broker.createConnectSession({
        provider,
        connection_id: user,
        return_to: `${self}/return?user=${encodeURIComponent(user)}`,
      });
      return res.writeHead(302, { location: session.url }).end();
    }
    if (url.pathname === '/return') {
      const error = url.searchParams.get('error');
      if (error || url.searchParams.get('connected') !== provider)
        return page(res, 200, `<p>Not connected (${escape(error ?? 'unknown')}). ${connectLink(user)}</p>`);
      const api = await callProvider(user);
      return page(
        res,
        200,
        `<p>Connected ${escape(user)}. The provider's API answered ${api.status}:</p><pre>${escape(api.body)}</pre>`,
      );
    }
    return page(res, 404, 'Not found');
  } catch (error) {
    // connection_not_found or reauthorization_required: the user (re)connects; other codes: docs/errors.md.
    if (
      error instanceof BrokerProblemError &&
      ['connection_not_found', 'reauthorization_required'].includes(error.code)
    )
      return page(res, 409, `<p>${escape(error.code)}: ${connectLink(user)}</p>`);
    page(
      res,
      502,
      `<p>The broker said: ${escape(error instanceof BrokerProblemError ? error.code : 'unreachable')}</p>`,
    );
  }
}).listen(port, () => console.log(`Example service on ${self}`));
