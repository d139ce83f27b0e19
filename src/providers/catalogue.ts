import { ProviderEntry } from './provider-definition';

/**
 * The built-in providers, as data. Each quirk is a field; the source of each fact is in
 * `docs_url` or beside the field. Overridable field by field through PROVIDERS_FILE and
 * `<PROVIDER>_*` variables.
 */
export const BUILT_IN_PROVIDERS: readonly ProviderEntry[] = [
  {
    // bexio moved its identity provider to Keycloak; the older idp.bexio.com endpoints are retired.
    // Issuer and endpoints as https://auth.bexio.com/realms/bexio/.well-known/openid-configuration
    // lists them; it also announces authorization_response_iss_parameter_supported: true (RFC 9207),
    // code_challenge_methods_supported ["plain", "S256"] and token_endpoint_auth_methods_supported
    // with both client_secret_basic and client_secret_post.
    id: 'bexio',
    display_name: 'bexio',
    authorization_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/auth',
    token_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/token',
    revocation_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/revoke',
    issuer: 'https://auth.bexio.com/realms/bexio',
    // Users may deselect API scopes at consent: the granted `scope` of the token response is kept.
    // `offline_access` is what yields a refresh token; API scopes (contact_show, kb_invoice_show …,
    // all in the discovery document's scopes_supported) are added through BEXIO_SCOPES.
    default_scopes: ['openid', 'offline_access'],
    scope_separator: ' ',
    client_auth: 'client_secret_basic',
    pkce: 'S256',
    // Keycloak may rotate refresh tokens on every refresh ("Revoke Refresh Token" realm setting).
    refresh_token_rotation: true,
    // Keycloak's offline sessions expire after "Offline Session Idle" unless a refresh keeps them
    // alive: 30 days by default (DEFAULT_OFFLINE_SESSION_IDLE_TIMEOUT = 2592000 in keycloak/keycloak
    // server-spi/src/main/java/org/keycloak/models/Constants.java; the setting is described in
    // https://www.keycloak.org/docs/latest/server_admin/#_timeouts). bexio's current docs state no
    // idle expiry for its refresh tokens; its retired OAuth docs (https://docs.bexio.com/oauth/oauth/,
    // office.bexio.com endpoints) gave them 2 weeks. Weekly is inside both.
    keepalive_after: 604_800,
    // The proxy's upstream: docs.bexio.com ("First steps") calls GET https://api.bexio.com/2.0/contact
    // with `Authorization: Bearer`; paths carry their version (/2.0/…, /3.0/…).
    api_base_url: 'https://api.bexio.com',
    docs_url: 'https://docs.bexio.com/#section/Authentication',
  },
  {
    // Scopes are fixed in the app's settings in Jobber's Developer Center ("the scopes specified
    // when the app was created", app_authorization docs): no `scope` is sent.
    // The token response carries no `expires_in`; the access token is a JWT whose `exp` is its
    // expiry (Jobber's own template, GetJobber/Jobber-AppTemplate-RailsAPI, reads expires_at from
    // the JWT's `exp`). Refresh token rotation is on by default and required for the App
    // Marketplace; for apps created after 2 January 2024 the previous refresh token is invalidated
    // at once (developer.getjobber.com/docs/building_your_app/refresh_token_rotation).
    id: 'jobber',
    display_name: 'Jobber',
    authorization_url: 'https://api.getjobber.com/api/oauth/authorize',
    token_url: 'https://api.getjobber.com/api/oauth/token',
    default_scopes: [],
    // Jobber's template (oauth2 gem 1.4.9, whose default auth_scheme is request_body) posts
    // client_id and client_secret as form parameters; Basic is not documented.
    client_auth: 'client_secret_post',
    // Jobber documents no PKCE and its template sends none; nothing says its server refuses the
    // parameters either (a server without PKCE ignores them: RFC 6749 §3.1, §3.2; RFC 7636 §5).
    // Should it refuse them, a PROVIDERS_FILE entry {"id": "jobber", "pkce": "none"} turns them off.
    pkce: 'S256',
    // `exp` of the JWT; the assumed hour only if a token ever comes back opaque.
    expiry: { from: 'jwt_exp', default_seconds: 3600 },
    refresh_token_rotation: true,
    // GraphQL only: every call is POST https://api.getjobber.com/api/graphql (docs/using_jobbers_api/
    // api_queries_and_mutations), so the proxy's path is `graphql` under this base.
    api_base_url: 'https://api.getjobber.com/api',
    // Every GraphQL request must name a dated API version (docs/using_jobbers_api/api_versioning);
    // unsupported versions are upgraded to the oldest supported one. 2025-04-16 is the version
    // current integrations pin; pick the newest from Jobber's changelog.
    api_headers: { 'X-JOBBER-GRAPHQL-VERSION': '2025-04-16' },
    docs_url: 'https://developer.getjobber.com/docs/building_your_app/app_authorization',
  },
  {
    // UNCONFIRMED: Bonjoro documents no public authorization endpoint. These are the seed's
    // defaults; set BONJORO_AUTHORIZATION_URL / BONJORO_TOKEN_URL to the values Bonjoro gives you.
    // Its API v2 reference (docs_url) lists only a token operation, POST
    // https://www.bonjoro.com/api/v2/oauth/2/token (grant types password, client_credentials,
    // authorization_code), answering a JWT bearer token with `expires_in` and a refresh token;
    // the API itself takes `Authorization: Bearer` (an API key works too: BONJORO_AUTH_MODE=api_key).
    id: 'bonjoro',
    display_name: 'Bonjoro',
    authorization_url: 'https://app.bonjoro.com/oauth/authorize',
    token_url: 'https://app.bonjoro.com/oauth/token',
    default_scopes: [],
    // The API v2 reference (docs_url) serves every operation under this base, `Authorization: Bearer`.
    api_base_url: 'https://www.bonjoro.com/api/v2',
    docs_url: 'https://vimily.github.io/bonjoro-api-docs/',
  },
  {
    // OAuth as the seed describes it (comma separated scopes). Process Street's public API
    // documents API keys only (`X-API-KEY`, developer.process.st and the v1.1 reference in
    // docs_url): PROCESS_STREET_AUTH_MODE=api_key switches to them.
    // The v1.1 OpenAPI lists GET https://public-api.process.st/api/v1.1/testAuth ("returns the API
    // key's label"), a cheap key check; it is not the default verify_url because its answer to a
    // bad key (401 or 403, which refuse the key, or another status, which reads as "provider
    // unavailable") is not documented. Set it with PROCESS_STREET_API_KEY_VERIFY_URL or an
    // `api_key.verify_url` in PROVIDERS_FILE.
    id: 'process-street',
    display_name: 'Process Street',
    authorization_url: 'https://app.process.st/oauth/authorize',
    token_url: 'https://app.process.st/oauth/token',
    default_scopes: ['read', 'write'],
    scope_separator: ',',
    api_key: { header: 'X-API-KEY', prefix: '', verify_method: 'GET' },
    // The v1.1 reference (docs_url) serves its operations under /api/v1.1 with `X-API-KEY`
    // (developer.process.st's older examples show paths at the host's root: override with
    // PROCESS_STREET_API_BASE_URL if a call there is what you need).
    api_base_url: 'https://public-api.process.st/api/v1.1',
    docs_url: 'https://public-api.process.st/api/v1.1/docs/index.html',
  },
  {
    // OAuth as the seed describes it. respond.io's public API documents workspace access tokens
    // (Settings > Integrations > Developer API) sent as `Authorization: Bearer` to
    // https://api.respond.io/v2: RESPOND_IO_AUTH_MODE=api_key switches to them. No key check
    // endpoint is documented (GET /v2/space/user, listing the workspace's users, is the cheapest
    // read; RESPOND_IO_API_KEY_VERIFY_URL sets one if wanted).
    id: 'respond-io',
    display_name: 'respond.io',
    authorization_url: 'https://app.respond.io/oauth/authorize',
    token_url: 'https://app.respond.io/oauth/token',
    default_scopes: [],
    api_key: { header: 'Authorization', prefix: 'Bearer ', verify_method: 'GET' },
    // REST under /v2 with `Authorization: Bearer <token>` (developers.respond.io).
    api_base_url: 'https://api.respond.io/v2',
    docs_url: 'https://developers.respond.io/',
  },
];
