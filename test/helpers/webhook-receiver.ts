import { Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';

export interface ReceivedEvent {
  id: string;
  type: string;
  provider: string;
  connection_id: string;
}

/**
 * A webhook endpoint on loopback that takes `delayMs` to answer each delivery and records, per
 * delivery id (`X-Broker-Delivery`), how many attempts arrived and the most that were open at
 * the same moment: a broker must deliver each event at least once and never twice at once.
 */
export class ConcurrencyRecordingReceiver {
  /** Attempts per delivery id. */
  readonly attempts = new Map<string, number>();
  /** Most attempts of one delivery id open at once. */
  readonly maxConcurrent = new Map<string, number>();
  /** The events answered 2xx, in the order they completed. */
  readonly delivered: ReceivedEvent[] = [];
  private readonly open = new Map<string, number>();
  private server?: Server;
  /** While true, every delivery is answered 503 (after the delay). */
  failing = false;

  private constructor(public delayMs: number) {}

  static async start(delayMs: number): Promise<ConcurrencyRecordingReceiver> {
    const receiver = new ConcurrencyRecordingReceiver(delayMs);
    receiver.server = createServer((req, res) => {
      const id = String(req.headers['x-broker-delivery'] ?? '');
      let raw = '';
      let settled = false;
      receiver.attempts.set(id, (receiver.attempts.get(id) ?? 0) + 1);
      const open = (receiver.open.get(id) ?? 0) + 1;
      receiver.open.set(id, open);
      receiver.maxConcurrent.set(id, Math.max(receiver.maxConcurrent.get(id) ?? 0, open));
      // Open until answered or until the sender gave up (its timeout closes the socket).
      const settle = (): void => {
        if (settled) return;
        settled = true;
        receiver.open.set(id, (receiver.open.get(id) ?? 1) - 1);
      };
      res.once('close', settle);
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => {
        setTimeout(() => {
          if (res.destroyed) return settle();
          if (receiver.failing) return void res.writeHead(503).end();
          try {
            receiver.delivered.push(JSON.parse(raw) as ReceivedEvent);
          } catch {
            // not JSON: counted as an attempt only
          }
          res.writeHead(204).end();
        }, receiver.delayMs);
      });
    });
    await new Promise<void>((resolve) => receiver.server!.listen(0, '127.0.0.1', () => resolve()));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hooks`;
  }

  /** Delivery ids that were ever open twice at once. */
  overlapping(): string[] {
    return [...this.maxConcurrent].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** Delivery ids answered 2xx at least once. */
  deliveredIds(): Set<string> {
    return new Set(this.delivered.map((e) => e.id));
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
