import axios, { AxiosInstance } from 'axios';
import { RawHttpResponse } from './parse-token-response';

export interface ProviderHttpOptions {
  timeoutMs: number;
}

export interface ProviderRequest {
  method: 'GET' | 'POST' | 'HEAD';
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A network failure before any answer: nothing reached the provider's logic, or we cannot know. */
export class ProviderNetworkError extends Error {
  readonly timedOut: boolean;
  /** True when the request certainly never reached the server (connection refused, DNS). */
  readonly notSent: boolean;

  constructor(message: string, timedOut: boolean, notSent: boolean) {
    super(message);
    this.name = 'ProviderNetworkError';
    this.timedOut = timedOut;
    this.notSent = notSent;
  }
}

export type ProviderHttp = (request: ProviderRequest) => Promise<RawHttpResponse>;

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * The one door to providers: every outbound call has a timeout (PROVIDER_TIMEOUT), follows no
 * redirect, and returns the raw answer. Errors carry no request data (axios errors hold bodies
 * and headers, which would carry secrets into logs).
 */
export function createProviderHttp(
  options: ProviderHttpOptions,
  client: AxiosInstance = axios.create(),
): ProviderHttp {
  return async (request) => {
    try {
      const response = await client.request<string>({
        method: request.method,
        url: request.url,
        headers: { 'User-Agent': 'oauth-broker', ...request.headers },
        data: request.body,
        timeout: options.timeoutMs,
        signal: AbortSignal.timeout(options.timeoutMs + 50),
        maxRedirects: 0,
        maxContentLength: 1024 * 1024,
        responseType: 'text',
        transformResponse: (data: unknown) => data,
        validateStatus: () => true,
        proxy: false,
      });
      return {
        status: response.status,
        contentType: String(response.headers['content-type'] ?? ''),
        body: typeof response.data === 'string' ? response.data : '',
      };
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED';
      throw new ProviderNetworkError(
        timedOut ? 'provider timed out' : `provider unreachable (${code || 'network error'})`,
        timedOut,
        NOT_SENT_CODES.has(code),
      );
    }
  };
}
