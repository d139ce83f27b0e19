import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';

/** One request as it reached the fake API: raw target, raw headers, body bytes. */
export interface UpstreamRecord {
  method: string;
  /** The request target byte for byte (path and query). */
  url: string;
  rawHeaders: string[];
  /** Lower-cased names, several values joined as Node joins them. */
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The client's port: requests with the same one came over one kept-alive connection. */
  remotePort?: number;
  /** When the first and the last byte of the body arrived (ms, performance clock). */
  firstByteAt?: number;
  endedAt: number;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, record: UpstreamRecord) => void;

/**
 * A provider API on loopback for proxy tests: records every request (with its whole body, unless
 * `countOnly` is set for large uploads) and answers through a handler the test sets; by default it
 * echoes the method and target as JSON.
 */
export class FakeUpstream {
  readonly requests: UpstreamRecord[] = [];
  url = '';
  /** Large uploads: count the bytes instead of keeping them. */
  countOnly = false;
  bytesReceived = 0;
  private handler: UpstreamHandler = echo;
  private server?: Server;

  static async start(): Promise<FakeUpstream> {
    const upstream = new FakeUpstream();
    upstream.server = createServer((req, res) => upstream.receive(req, res));
    upstream.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => upstream.server!.listen(0, '127.0.0.1', () => resolve()));
    upstream.url = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
    return upstream;
  }

  /** Replaces the answer; undefined restores the echo. */
  on(handler: UpstreamHandler | undefined): void {
    this.handler = handler ?? echo;
  }

  /** Answers as soon as the head arrives (the body, if any, is read on by the handler). */
  onHead?: UpstreamHandler;

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    const record: UpstreamRecord = {
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body: Buffer.alloc(0),
      remotePort: req.socket.remotePort,
      endedAt: 0,
    };
    this.requests.push(record);
    if (this.onHead) return this.onHead(req, res, record);
    req.on('data', (chunk: Buffer) => {
      record.firstByteAt ??= performance.now();
      this.bytesReceived += chunk.length;
      if (!this.countOnly) chunks.push(chunk);
    });
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      record.endedAt = performance.now();
      this.handler(req, res, record);
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const echo: UpstreamHandler = (_req, res, record) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ method: record.method, url: record.url, bytes: record.body.length }));
};
