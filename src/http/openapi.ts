import { ERROR_CODES } from '../errors/broker-error';

/**
 * The OpenAPI 3.1 description of the internal API, served at /internal/openapi.json. A test
 * drives every route and status listed here against the real app and checks each answer against
 * it, so the document stays true.
 */
export function buildOpenApiDocument(): Record<string, unknown> {
  const problem = (description: string) => ({
    description,
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  });
  const json = (description: string, ref: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  // Every /internal request passes the key check: 401 without a valid key, 429 once an address
  // has failed it AUTH_FAILURE_LIMIT_PER_MINUTE times in a minute.
  const auth = {
    '401': problem('unauthorized: no or wrong internal API key'),
    '429': problem(
      'rate_limited: too many failed authentications from this address; retry after `Retry-After` seconds',
    ),
  };
  // Anything unexpected: a generic 500 internal_error whose `request_id` links it to the log line.
  const unexpected = {
    default: problem('internal_error: an unexpected failure (see the log line of `request_id`)'),
  };
  const common = {
    '400': problem('invalid_request: a parameter or body breaks the rules'),
    ...auth,
    '503': problem('store_unavailable: Redis cannot be reached (`Retry-After: 1`)'),
    ...unexpected,
  };
  // Operations that read a JSON body (64 kB at most; identity, gzip, deflate or br; UTF-8).
  const withBody = {
    '413': problem('payload_too_large: the body exceeds 64 kB'),
    '415': problem('unsupported_media_type: an unsupported Content-Encoding or charset'),
  };
  const providerParams = [
    {
      name: 'provider',
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
    },
    {
      name: 'connection_id',
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$' },
    },
  ];
  const notFound = problem('provider_not_found, provider_not_enabled or connection_not_found');
  const isoOrNull = { type: ['string', 'null'], format: 'date-time' };

  return {
    openapi: '3.1.0',
    info: {
      title: 'OAuth Broker internal API',
      version: '1.0.0',
      description:
        'Served on the internal listener only. Every /internal/* request needs `Authorization: Bearer <key>` with a key of INTERNAL_API_KEYS.',
    },
    servers: [{ url: 'http://127.0.0.1:3001' }],
    security: [{ internalKey: [] }],
    paths: {
      '/internal/connect-sessions': {
        post: {
          operationId: 'createConnectSession',
          summary: 'Create a single-use connect link for a browser',
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/ConnectSessionRequest' } },
            },
          },
          responses: {
            '201': json('The link and when it expires', 'ConnectSession'),
            ...common,
            ...withBody,
            '404': problem('provider_not_found or provider_not_enabled'),
          },
        },
      },
      '/internal/connections': {
        get: {
          operationId: 'listConnections',
          summary: 'Page through connections (metadata only)',
          parameters: [
            { name: 'provider', in: 'query', schema: { type: 'string' } },
            { name: 'cursor', in: 'query', schema: { type: 'string' } },
            {
              name: 'end_user_id',
              in: 'query',
              description: 'only the connections of this end user (through an index, never a scan)',
              schema: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$' },
            },
            {
              name: 'tag',
              in: 'query',
              description: '`key:value`, repeatable (at most 10): only connections carrying every one',
              style: 'form',
              explode: true,
              schema: {
                type: 'array',
                maxItems: 10,
                items: { type: 'string', pattern: '^[a-z0-9_.-]{1,64}:' },
              },
            },
            {
              name: 'limit',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
            },
          ],
          responses: {
            '200': json('A page of connections', 'ConnectionPage'),
            ...common,
            '404': problem('provider_not_found'),
          },
        },
      },
      '/internal/connections/{provider}/{connection_id}': {
        parameters: providerParams,
        get: {
          operationId: 'getConnection',
          summary: 'A connection’s metadata, never secrets',
          responses: { '200': json('Metadata', 'Connection'), ...common, '404': notFound },
        },
        put: {
          operationId: 'importConnection',
          summary: 'Import tokens (or an API key) obtained elsewhere',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/ImportRequest' } } },
          },
          responses: {
            '200': json('Replaced an existing connection', 'Connection'),
            '201': json('Created a new connection', 'Connection'),
            ...common,
            ...withBody,
            '404': problem('provider_not_found or provider_not_enabled'),
          },
        },
        patch: {
          operationId: 'updateConnectionOwner',
          summary: 'Replace the end_user and/or tags it names; answers the metadata',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/OwnerPatch' } } },
          },
          responses: {
            '200': json('The metadata after the change', 'Connection'),
            ...common,
            ...withBody,
            '404': notFound,
          },
        },
        delete: {
          operationId: 'deleteConnection',
          summary: 'Delete; revokes at the provider afterwards (best effort)',
          responses: { '204': { description: 'Deleted' }, ...common, '404': notFound },
        },
      },
      '/internal/connections/{provider}/{connection_id}/token': {
        parameters: providerParams,
        get: {
          operationId: 'getToken',
          summary: 'A token valid for at least min_validity seconds, refreshed first when needed',
          parameters: [
            { name: 'min_validity', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 86400 } },
            { name: 'force_refresh', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } },
          ],
          responses: {
            '200': json('A fresh token (oauth2) or the API key and its headers (api_key)', 'Token'),
            ...common,
            '404': notFound,
            '409': problem('reauthorization_required: the user must connect again'),
            '500': problem('decryption_failed: the stored tokens decrypt under no key of the ring'),
            '502': problem('provider_unavailable (see `retryable`) or provider_rejected_client'),
          },
        },
      },
      '/internal/providers': {
        get: {
          operationId: 'listProviders',
          summary: 'The enabled providers, their scopes and redirect URIs',
          responses: { '200': json('Providers', 'ProviderList'), ...auth, ...unexpected },
        },
      },
      '/internal/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document',
          responses: {
            '200': {
              description: 'OpenAPI 3.1',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            ...auth,
            ...unexpected,
          },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readiness',
          security: [],
          summary: 'Ready when Redis answers PING',
          responses: {
            '200': {
              description: 'Ready',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Readiness' } } },
            },
            '503': {
              description: 'Redis unreachable',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Readiness' } } },
            },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          security: [],
          summary: 'Prometheus metrics',
          responses: {
            '200': {
              description: 'Prometheus text format',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...unexpected,
          },
        },
      },
    },
    components: {
      securitySchemes: { internalKey: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string', enum: Object.keys(ERROR_CODES) },
            retryable: { type: 'boolean' },
            request_id: { type: 'string' },
            current_token_expires_at: { type: 'string', format: 'date-time' },
          },
        },
        ConnectSessionRequest: {
          type: 'object',
          required: ['provider', 'connection_id'],
          additionalProperties: false,
          properties: {
            provider: { type: 'string' },
            connection_id: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$' },
            return_to: { type: 'string', format: 'uri' },
            scopes: { type: 'array', items: { type: 'string' }, maxItems: 100 },
            end_user: { $ref: '#/components/schemas/EndUserOrNull' },
            tags: { $ref: '#/components/schemas/Tags' },
          },
        },
        EndUser: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$' },
            email: { type: 'string', minLength: 1, maxLength: 320 },
            display_name: { type: 'string', minLength: 1, maxLength: 320 },
            organization_id: { type: 'string', minLength: 1, maxLength: 320 },
          },
        },
        EndUserOrNull: {
          description: 'whom the connection belongs to; null clears it (in a request) or none (in metadata)',
          oneOf: [{ $ref: '#/components/schemas/EndUser' }, { type: 'null' }],
        },
        Tags: {
          type: 'object',
          description: 'at most 10 entries; keys 1-64 characters of a-z0-9_.-',
          additionalProperties: { type: 'string', maxLength: 256 },
        },
        OwnerPatch: {
          type: 'object',
          additionalProperties: false,
          properties: {
            end_user: { $ref: '#/components/schemas/EndUserOrNull' },
            tags: { $ref: '#/components/schemas/Tags' },
          },
        },
        ConnectSession: {
          type: 'object',
          required: ['url', 'expires_at'],
          properties: {
            url: { type: 'string', format: 'uri' },
            expires_at: { type: 'string', format: 'date-time' },
          },
        },
        LastError: {
          type: ['object', 'null'],
          required: ['code', 'message', 'at'],
          properties: {
            code: { type: 'string' },
            message: { type: 'string' },
            at: { type: 'string', format: 'date-time' },
            retryable: { type: 'boolean' },
          },
        },
        Connection: {
          type: 'object',
          required: [
            'provider',
            'connection_id',
            'auth_mode',
            'status',
            'scopes',
            'expires_at',
            'created_at',
            'updated_at',
            'last_refreshed_at',
            'last_error',
            'refresh_failures',
            'next_refresh_at',
            'key_id',
            'end_user',
            'tags',
          ],
          properties: {
            provider: { type: 'string' },
            connection_id: { type: 'string' },
            auth_mode: { type: 'string', enum: ['oauth2', 'api_key'] },
            status: { type: 'string', enum: ['active', 'reauthorization_required'] },
            scopes: { type: 'array', items: { type: 'string' } },
            expires_at: isoOrNull,
            created_at: { type: 'string', format: 'date-time' },
            updated_at: { type: 'string', format: 'date-time' },
            last_refreshed_at: isoOrNull,
            last_error: { $ref: '#/components/schemas/LastError' },
            refresh_failures: { type: 'integer', minimum: 0 },
            next_refresh_at: isoOrNull,
            key_id: { type: 'string' },
            end_user: { $ref: '#/components/schemas/EndUserOrNull' },
            tags: { $ref: '#/components/schemas/Tags' },
          },
        },
        ConnectionPage: {
          type: 'object',
          required: ['connections', 'next_cursor'],
          properties: {
            connections: { type: 'array', items: { $ref: '#/components/schemas/Connection' } },
            next_cursor: { type: ['string', 'null'] },
          },
        },
        ImportRequest: {
          type: 'object',
          additionalProperties: false,
          properties: {
            access_token: { type: 'string' },
            refresh_token: { type: ['string', 'null'] },
            expires_at: {
              type: ['string', 'null'],
              format: 'date-time',
              description: 'not together with expires_in',
            },
            expires_in: {
              description: 'seconds, a number or a numeric string; not together with expires_at',
              anyOf: [
                { type: 'number', minimum: 0 },
                { type: 'string', pattern: '^\\d+$' },
                { type: 'null' },
              ],
            },
            scopes: { type: 'array', items: { type: 'string' } },
            token_type: { type: 'string' },
            api_key: { type: 'string', description: 'api_key providers only, instead of the token fields' },
            end_user: { $ref: '#/components/schemas/EndUserOrNull' },
            tags: { $ref: '#/components/schemas/Tags' },
          },
        },
        Token: {
          oneOf: [
            {
              type: 'object',
              required: ['auth_mode', 'access_token', 'token_type', 'expires_at', 'scopes'],
              properties: {
                auth_mode: { const: 'oauth2' },
                access_token: { type: 'string' },
                token_type: { type: 'string' },
                expires_at: isoOrNull,
                scopes: { type: 'array', items: { type: 'string' } },
              },
            },
            {
              type: 'object',
              required: ['auth_mode', 'api_key', 'headers', 'expires_at', 'scopes'],
              properties: {
                auth_mode: { const: 'api_key' },
                api_key: { type: 'string' },
                headers: { type: 'object', additionalProperties: { type: 'string' } },
                expires_at: { type: 'null' },
                scopes: { type: 'array', items: { type: 'string' }, maxItems: 0 },
              },
            },
          ],
        },
        Readiness: {
          type: 'object',
          required: ['status', 'redis'],
          properties: {
            status: { type: 'string', enum: ['ready', 'unavailable'] },
            redis: { type: 'string', enum: ['ok', 'unreachable'] },
          },
        },
        ProviderList: {
          type: 'object',
          required: ['providers'],
          properties: {
            providers: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'display_name', 'auth_mode', 'scopes', 'redirect_uri'],
                properties: {
                  id: { type: 'string' },
                  display_name: { type: 'string' },
                  auth_mode: { type: 'string', enum: ['oauth2', 'api_key'] },
                  scopes: { type: 'array', items: { type: 'string' } },
                  redirect_uri: { type: ['string', 'null'], description: 'null for api_key providers' },
                  issuer: {
                    type: ['string', 'null'],
                    description: 'RFC 9207 issuer the callback requires in `iss`',
                  },
                  pkce: { type: 'string', enum: ['S256', 'none'] },
                  refresh_token_rotation: { type: 'boolean' },
                  keepalive_after: { type: 'integer', minimum: 0, description: 'seconds; 0 is off' },
                  api_base_url: { type: ['string', 'null'] },
                  api_headers: { type: 'object', additionalProperties: { type: 'string' } },
                  api_key_header: {
                    type: ['string', 'null'],
                    description: 'api_key providers: the header the key goes in',
                  },
                  docs_url: { type: ['string', 'null'] },
                },
              },
            },
          },
        },
      },
    },
  };
}
