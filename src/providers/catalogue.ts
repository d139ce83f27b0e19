import { ProviderEntry } from './provider-definition';

/**
 * The built-in providers, as data. Each quirk is a field; the source of each fact is in
 * `docs_url` or beside the field. Overridable field by field through PROVIDERS_FILE and
 * `<PROVIDER>_*` variables.
 */
export const BUILT_IN_PROVIDERS: readonly ProviderEntry[] = [
  {
    // bexio moved its identity provider to Keycloak; the older idp.bexio.com endpoints are retired.
    // Endpoints from https://auth.bexio.com/realms/bexio/.well-known/openid-configuration, which
    // also announces authorization_response_iss_parameter_supported (RFC 9207).
    id: 'bexio',
    display_name: 'bexio',
    authorization_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/auth',
    token_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/token',
    revocation_url: 'https://auth.bexio.com/realms/bexio/protocol/openid-connect/revoke',
    issuer: 'https://auth.bexio.com/realms/bexio',
    // Users may deselect API scopes at consent: the granted `scope` of the token response is kept.
    default_scopes: ['openid', 'offline_access'],
    scope_separator: ' ',
    client_auth: 'client_secret_basic',
    pkce: 'S256',
    // Keycloak may rotate refresh tokens on every refresh ("Revoke Refresh Token" realm setting).
    refresh_token_rotation: true,
    // Keycloak's offline sessions expire after "Offline Session Idle" (30 days by default) unless
    // a refresh keeps them alive: refresh weekly, well inside that window.
    keepalive_after: 604_800,
    api_base_url: 'https://api.bexio.com',
    docs_url: 'https://docs.bexio.com/#section/Authentication',
  },
  {
    // Scopes are fixed in the app's settings in Jobber's Developer Center: no `scope` is sent.
    // The token response carries no `expires_in`; the access token is a JWT whose `exp` is its
    // expiry. Refresh tokens rotate and the old one stops working at once.
    id: 'jobber',
    display_name: 'Jobber',
    authorization_url: 'https://api.getjobber.com/api/oauth/authorize',
    token_url: 'https://api.getjobber.com/api/oauth/token',
    default_scopes: [],
    // Jobber's guide posts client_id and client_secret as form parameters.
    client_auth: 'client_secret_post',
    pkce: 'S256',
    expiry: { from: 'jwt_exp', default_seconds: 3600 },
    refresh_token_rotation: true,
    api_base_url: 'https://api.getjobber.com/api/graphql',
    // GraphQL requests name a dated schema version.
    api_headers: { 'X-JOBBER-GRAPHQL-VERSION': '2025-01-20' },
    docs_url: 'https://developer.getjobber.com/docs/building_your_app/app_authorization',
  },
  {
    // UNCONFIRMED: Bonjoro documents no public authorization endpoint. These are the seed's
    // defaults; set BONJORO_AUTHORIZATION_URL / BONJORO_TOKEN_URL to the values Bonjoro gives you.
    id: 'bonjoro',
    display_name: 'Bonjoro',
    authorization_url: 'https://app.bonjoro.com/oauth/authorize',
    token_url: 'https://app.bonjoro.com/oauth/token',
    default_scopes: [],
    api_base_url: 'https://www.bonjoro.com/api/v2',
    docs_url: 'https://vimeo.github.io/bonjoro-api-docs/',
  },
  {
    // OAuth as the seed describes it (comma separated scopes). Process Street's public API
    // documents API keys only (X-API-KEY): PROCESS_STREET_AUTH_MODE=api_key switches to them.
    // Its key check endpoint (GET https://public-api.process.st/api/v1.1/testAuth) can be set as
    // `api_key.verify_url` through PROVIDERS_FILE.
    id: 'process-street',
    display_name: 'Process Street',
    authorization_url: 'https://app.process.st/oauth/authorize',
    token_url: 'https://app.process.st/oauth/token',
    default_scopes: ['read', 'write'],
    scope_separator: ',',
    api_key: { header: 'X-API-KEY', prefix: '', verify_method: 'GET' },
    api_base_url: 'https://public-api.process.st/api/v1.1',
    docs_url: 'https://developer.process.st/public-api',
  },
  {
    // OAuth as the seed describes it. respond.io's public API documents workspace access tokens
    // sent as `Authorization: Bearer`: RESPOND_IO_AUTH_MODE=api_key switches to them.
    id: 'respond-io',
    display_name: 'respond.io',
    authorization_url: 'https://app.respond.io/oauth/authorize',
    token_url: 'https://app.respond.io/oauth/token',
    default_scopes: [],
    api_key: { header: 'Authorization', prefix: 'Bearer ', verify_method: 'GET' },
    api_base_url: 'https://api.respond.io/v2',
    docs_url: 'https://developers.respond.io/',
  },
];
