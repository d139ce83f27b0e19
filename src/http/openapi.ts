import { ERROR_CODES } from '../errors/broker-error';
import * as answers from './schemas/answers';
import { CONNECTION_ID_PATTERN, PROVIDER_ID_PATTERN } from './schemas/fields';
import { componentSchemas, queryParameters } from './schemas/json-schema';
import { EndUser, EndUserChange, Tags } from './schemas/owner';
import { AuditQuery, ListQuery, TokenQuery } from './schemas/queries';
import { ConnectSessionRequest, ImportRequest, OwnerPatch } from './schemas/requests';

/**
 * The shapes the document names, each generated from the schema the routes validate with or
 * answer by (src/http/schemas/): the document cannot say one thing while the code does another.
 */
const COMPONENTS = {
  Problem: answers.Problem,
  AuditPage: answers.AuditPage,
  AuditEntry: answers.AuditEntry,
  ConnectSessionRequest,
  EndUser,
  // As requests name it; an answer's end_user is EndUser or null too, without the clean-up.
  EndUserOrNull: EndUserChange,
  Tags,
  OwnerPatch,
  ConnectSession: answers.ConnectSession,
  LastError: answers.LastError,
  Connection: answers.Connection,
  ConnectionPage: answers.ConnectionPage,
  ImportRequest,
  Token: answers.Token,
  Readiness: answers.Readiness,
  ProviderList: answers.ProviderList,
};
type Component = keyof typeof COMPONENTS;

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
  const json = (description: string, ref: Component) => ({
    description,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  const body = (ref: Component) => ({
    required: true,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  // Every /internal request passes the key check: 401 without a valid key, 429 once an address
  // has failed it AUTH_FAILURE_LIMIT_PER_MINUTE times in a minute.
  const auth = {
    '401': problem('unauthorized: no or wrong internal API key'),
    '403': problem(
      'forbidden: a service key (SERVICE_KEYS_FILE) whose grant does not allow this action or provider; `refused` names which',
    ),
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
      schema: { type: 'string', pattern: PROVIDER_ID_PATTERN.source },
    },
    {
      name: 'connection_id',
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: CONNECTION_ID_PATTERN.source },
    },
  ];
  const notFound = problem('provider_not_found, provider_not_enabled or connection_not_found');

  return {
    openapi: '3.1.0',
    info: {
      title: 'OAuth Broker internal API',
      version: '1.0.0',
      description:
        'Served on the internal listener only. Every /internal/* request needs `Authorization: Bearer <key>` with a key of INTERNAL_API_KEYS (every right) or a service key of SERVICE_KEYS_FILE (its grant; outside it, 403 forbidden).',
    },
    servers: [{ url: 'http://127.0.0.1:3001' }],
    security: [{ internalKey: [] }],
    paths: {
      '/internal/connect-sessions': {
        post: {
          operationId: 'createConnectSession',
          summary: 'Create a single-use connect link for a browser',
          requestBody: body('ConnectSessionRequest'),
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
          parameters: queryParameters(ListQuery),
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
          requestBody: body('ImportRequest'),
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
          requestBody: body('OwnerPatch'),
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
          parameters: queryParameters(TokenQuery),
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
      '/internal/proxy/{provider}/{connection_id}/{path}': proxyOperations(providerParams),
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
      '/internal/audit': {
        get: {
          operationId: 'listAudit',
          summary: 'The audit log, newest first (an `admin` action for service keys)',
          parameters: queryParameters(AuditQuery),
          responses: { '200': json('A page of the audit log', 'AuditPage'), ...common },
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
              content: json('', 'Readiness').content,
            },
            '503': {
              description: 'Redis unreachable',
              content: json('', 'Readiness').content,
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
      schemas: componentSchemas(COMPONENTS),
    },
  };
}

/**
 * The proxy (docs/proxy.md): one operation per method. Its answers are the provider's, passed
 * through whatever their status, headers and body (nothing this document can describe), or the
 * broker's own refusals as problem+json carrying `Broker-Error: <code>`.
 */
function proxyOperations(providerParams: unknown[]): Record<string, unknown> {
  const item: Record<string, unknown> = {
    parameters: [
      ...providerParams,
      {
        name: 'path',
        in: 'path',
        required: true,
        description:
          'The path under the provider’s api_base_url, slashes included; the query string goes on as it came. Refused (400): `.`/`..` segments (plain or percent-encoded), an encoded `/` or `\\`, a `\\`, `@` or `:` in the first segment, a leading `/`.',
        schema: { type: 'string' },
      },
    ],
  };
  for (const method of ['get', 'head', 'post', 'put', 'patch', 'delete']) {
    item[method] = {
      operationId: `proxy${method[0]!.toUpperCase()}${method.slice(1)}`,
      summary: `${method.toUpperCase()} on the provider’s API with the connection’s credentials`,
      ...(['post', 'put', 'patch'].includes(method)
        ? {
            requestBody: {
              required: false,
              description: 'Any body, streamed on (up to 1 MiB kept for a retry after a 401)',
              content: { '*/*': { schema: {} } },
            },
          }
        : {}),
      responses: {
        '200': {
          description:
            'The provider’s answer, passed through: any status, its headers (but Set-Cookie and hop-by-hop fields) and its body, streamed. Never carries Broker-Error.',
        },
        default: {
          description:
            'A refusal of the broker itself, with `Broker-Error: <code>`: 400 invalid_request, 401 unauthorized, 403 forbidden (a service key without `proxy` on this provider), 404 provider_not_found / provider_not_enabled / connection_not_found / proxy_not_configured, 409 reauthorization_required, 413 proxy_body_too_large, 429 rate_limited, 502 provider_unavailable (unreachable) or provider_rejected_client, 503 store_unavailable, 504 provider_unavailable (no response head within PROXY_TIMEOUT)',
          headers: { 'Broker-Error': { schema: { type: 'string', enum: Object.keys(ERROR_CODES) } } },
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
        // A HEAD answer has no body: its 403 is among the refusals above, its code in Broker-Error.
        ...(method === 'head'
          ? {}
          : {
              '403': {
                description:
                  'forbidden: a service key (SERVICE_KEYS_FILE) without `proxy` on this provider; `refused` names which. Carries `Broker-Error: forbidden`',
                headers: { 'Broker-Error': { schema: { type: 'string', enum: ['forbidden'] } } },
                content: {
                  'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
                },
              },
            }),
      },
    };
  }
  return item;
}
