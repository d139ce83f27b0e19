import { TokenSet } from '../../oauth/parse-token-response';
import { parseInput } from '../schemas/parse-input';
import { ImportApiKey, ImportTokens } from '../schemas/requests';

export type ImportedCredentials = { kind: 'oauth2'; tokens: TokenSet } | { kind: 'api_key'; apiKey: string };

/**
 * The credentials of `PUT /internal/connections/:provider/:connection_id` (its owner fields aside),
 * checked against the schema of the provider's auth mode (src/http/schemas/requests.ts).
 */
export function parseImport(
  body: Record<string, unknown>,
  authMode: 'oauth2' | 'api_key',
  now = Date.now(),
): ImportedCredentials {
  if (authMode === 'api_key') return { kind: 'api_key', apiKey: parseInput(ImportApiKey, body).api_key };
  const tokens = parseInput(ImportTokens, body);
  let expiresAt: number | null = null;
  if (tokens.expires_at != null) expiresAt = Date.parse(tokens.expires_at);
  if (tokens.expires_in != null) expiresAt = now + Number(tokens.expires_in) * 1000;
  return {
    kind: 'oauth2',
    tokens: {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token ?? undefined,
      token_type: tokens.token_type ?? 'Bearer',
      expires_at: expiresAt,
      granted_scopes: tokens.scopes,
    },
  };
}
