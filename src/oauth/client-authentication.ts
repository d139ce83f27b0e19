import { Provider } from '../providers/provider-definition';

/**
 * Client authentication at the token endpoint (RFC 6749 §2.3.1). For Basic, id and secret are
 * form-urlencoded before base64, as §2.3.1 requires (many servers and clients forget it).
 */
export function clientAuthentication(
  provider: Pick<Provider, 'client_auth' | 'client_id' | 'client_secret'>,
): { headers: Record<string, string>; params: Record<string, string> } {
  const id = provider.client_id ?? '';
  const secret = provider.client_secret ?? '';
  if (provider.client_auth === 'client_secret_post') {
    return { headers: {}, params: { client_id: id, client_secret: secret } };
  }
  const basic = Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64');
  return { headers: { Authorization: `Basic ${basic}` }, params: {} };
}

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/** A request body in the provider's declared format (`token_request`). */
export function encodeBody(
  format: 'form' | 'json',
  params: Record<string, string>,
): { contentType: string; body: string } {
  if (format === 'json') return { contentType: 'application/json', body: JSON.stringify(params) };
  return { contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(params).toString() };
}
