import type { IncomingMessage } from 'node:http';

/** The body the proxy may buffer so that a request can be sent a second time (after a 401). */
export const REPLAY_LIMIT_BYTES = 1024 * 1024;

/**
 * How a request body will be sent: none, whole in memory (at most REPLAY_LIMIT_BYTES, so it can
 * be sent again), or streamed on (what was read ahead first, then the rest as it arrives), which
 * can be sent once only.
 */
export type ProxyBody =
  | { kind: 'none' }
  | { kind: 'buffered'; data: Buffer }
  | { kind: 'streamed'; head: Buffer[]; rest: IncomingMessage };

const NO_BODY: ProxyBody = { kind: 'none' };

/**
 * Reads ahead at most REPLAY_LIMIT_BYTES of the caller's body. A declared `Content-Length` above
 * the limit is streamed at once, without reading ahead; a chunked body is read until it ends or
 * passes the limit. The caller's stream is paused again before this answers. Answers at once,
 * without a promise, when there is nothing to read (most proxied requests: a GET).
 */
export function readReplayableBody(req: IncomingMessage): ProxyBody | Promise<ProxyBody> {
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (declared === undefined || declared === '0')) {
    // No body (RFC 9112 §6.3): nothing to read. An explicit `Content-Length: 0` is sent as such.
    return declared === '0' ? { kind: 'buffered', data: Buffer.alloc(0) } : NO_BODY;
  }
  if (!chunked && Number(declared) > REPLAY_LIMIT_BYTES) return { kind: 'streamed', head: [], rest: req };

  return new Promise((resolve, reject) => {
    const head: Buffer[] = [];
    let size = 0;
    const done = (body: ProxyBody): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      resolve(body);
    };
    const onData = (chunk: Buffer): void => {
      head.push(chunk);
      size += chunk.length;
      if (size > REPLAY_LIMIT_BYTES) {
        req.pause();
        done({ kind: 'streamed', head, rest: req });
      }
    };
    const onEnd = (): void => done({ kind: 'buffered', data: Buffer.concat(head, size) });
    const onError = (error: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      reject(error);
    };
    const onAborted = (): void => onError(new Error('the caller went away while sending its body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
