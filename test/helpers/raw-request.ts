import { IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { TEST_INTERNAL_KEY } from './internal-api';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One request to `baseUrl`'s host with `target` sent byte for byte (fetch would normalise `..` and
 * `\`), carrying the test internal key unless `headers` sets its own authorization.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  target: string,
  headers: Record<string, string | string[]> = {},
  body?: Buffer | string,
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: target,
        headers: { authorization: `Bearer ${TEST_INTERNAL_KEY}`, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
