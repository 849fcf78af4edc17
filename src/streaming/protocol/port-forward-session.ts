// The server side of a SPDY port-forward connection (kubelet's portforward/httpstream.go): every
// forwarded connection arrives as a pair of streams — "error" and "data" — sharing a requestID
// header and a port header. Streams are validated as they arrive (a bad one is reset), paired
// by request id, and a complete pair is handed out as a 'forward' event. A pair that does not
// complete in time gets kubelet's timeout message on its error stream.
import { EventEmitter } from 'node:events';
import { log } from '../../log.js';
import type { SpdyConnection } from '../spdy/spdy-connection.js';
import type { SpdyStream } from '../spdy/spdy-stream.js';
import { PORT_FORWARD_REQUEST_ID_HEADER, PORT_HEADER, STREAM_TYPE_HEADER, StreamType } from './constants.js';

export interface PortForwardSessionOptions {
  /** Pod sandbox id, used in error messages exactly where kubelet puts the pod name. */
  podSandboxId: string;
  /** Pod uid for error messages (kubelet's CRI streaming server passes an empty one). */
  podUid?: string;
  /** How long the second stream of a pair may take to arrive. */
  streamCreationTimeoutMs?: number;
}

export interface PortForwardSessionEvents {
  /** A complete pair: forward `data` to `port` in the pod, then call request.finish(err?). */
  forward: [port: number, data: SpdyStream, error: SpdyStream, request: PortForwardRequest];
}

/** One forwarded connection: bytes flow over `data`; failures are reported on `error`. */
export class PortForwardRequest {
  private done = false;

  constructor(
    readonly requestId: string,
    readonly port: number,
    readonly data: SpdyStream,
    readonly error: SpdyStream,
    private readonly describePod: string,
  ) {}

  /**
   * Ends the forward: on failure writes kubelet's message on the error stream; then both streams
   * are half-closed (kubelet closes both when PortForward returns).
   */
  finish(err?: Error | string): void {
    if (this.done) return;
    this.done = true;
    if (err !== undefined && this.error.writable) {
      const why = typeof err === 'string' ? err : err.message;
      this.error.write(`error forwarding port ${this.port} to pod ${this.describePod}: ${why}`);
    }
    if (this.error.writable) this.error.end();
    if (this.data.writable) this.data.end();
  }
}

interface PendingPair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

export class PortForwardSession extends EventEmitter<PortForwardSessionEvents> {
  private readonly pairs = new Map<string, PendingPair>();
  private readonly timeoutMs: number;
  private readonly describePod: string;

  constructor(
    readonly connection: SpdyConnection,
    opts: PortForwardSessionOptions,
  ) {
    super();
    this.timeoutMs = opts.streamCreationTimeoutMs ?? 30_000;
    this.describePod = `${opts.podSandboxId}, uid ${opts.podUid ?? ''}`;
    connection.on('stream', (stream) => this.onStream(stream));
    connection.on('close', () => {
      for (const p of this.pairs.values()) clearTimeout(p.timer);
      this.pairs.clear();
    });
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private onStream(stream: SpdyStream): void {
    const problem = validateStream(stream);
    if (problem) {
      log.warn({ stream: stream.id, err: problem }, 'portforward: stream rejected');
      stream.reset();
      return;
    }
    const requestId = requestIdOf(stream);
    let pair = this.pairs.get(requestId);
    if (!pair) {
      const created: PendingPair = {
        requestId,
        timer: setTimeout(() => this.timeOut(created), this.timeoutMs),
      };
      pair = created;
      this.pairs.set(requestId, pair);
    }
    const type = stream.header(STREAM_TYPE_HEADER)!;
    const slot = type === StreamType.error ? 'error' : 'data';
    if (pair[slot]) {
      const msg = `error processing stream for request ${requestId}: ${slot} stream already assigned`;
      log.warn({ requestId }, msg);
      pair.error?.write(msg);
      stream.reset();
      return;
    }
    pair[slot] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      this.pairs.delete(requestId);
      const port = Number(pair.data.header(PORT_HEADER));
      const request = new PortForwardRequest(requestId, port, pair.data, pair.error, this.describePod);
      this.emit('forward', port, pair.data, pair.error, request);
    }
  }

  private timeOut(pair: PendingPair): void {
    if (this.pairs.get(pair.requestId) !== pair) return;
    this.pairs.delete(pair.requestId);
    const msg = `(conn=${this.describePod}, request=${pair.requestId}) timed out waiting for streams`;
    log.warn({ requestId: pair.requestId }, msg);
    if (pair.error?.writable) pair.error.end(msg);
    pair.data?.reset();
  }
}

/** kubelet's checks, with its messages; undefined when the stream is acceptable. */
function validateStream(stream: SpdyStream): string | undefined {
  const portText = stream.header(PORT_HEADER);
  if (!portText) return `"${PORT_HEADER}" header is required`;
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) return `unable to parse "${portText}" as a port`;
  if (Number(portText) < 1) return `port "${portText}" must be > 0`;
  const type = stream.header(STREAM_TYPE_HEADER);
  if (!type) return `"${STREAM_TYPE_HEADER}" header is required`;
  if (type !== StreamType.error && type !== StreamType.data) return `invalid stream type "${type}"`;
  return undefined;
}

/**
 * The pairing key. Clients before Kubernetes 1.6 sent no requestID; kubelet then derives one
 * from stream ids (error = id, data = id - 2), which holds when pairs are opened one at a time.
 */
function requestIdOf(stream: SpdyStream): string {
  const id = stream.header(PORT_FORWARD_REQUEST_ID_HEADER);
  if (id) return id;
  return String(stream.header(STREAM_TYPE_HEADER) === StreamType.error ? stream.id : stream.id - 2);
}
