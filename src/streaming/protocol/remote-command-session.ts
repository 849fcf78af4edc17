// The server side of a SPDY remotecommand (exec / attach) session, after the upgrade: wait for
// the streams the client must open, expose them, turn resize messages into events, and report
// the command's outcome on the error stream before closing — the behaviour of kubelet's
// cri/streaming/remotecommand for v1..v4.
//
// Expected streams (kubelet counts exactly these): error always, stdin/stdout/stderr when
// requested, resize when tty and the protocol is v3 or later. With tty, stdout carries both
// output streams and stderr is never opened.
import { EventEmitter } from 'node:events';
import { DeadlineExceededError, InvalidArgumentError } from '../../errors.js';
import { log } from '../../log.js';
import { RstStatus } from '../spdy/frames.js';
import type { SpdyConnection } from '../spdy/spdy-connection.js';
import type { SpdyStream } from '../spdy/spdy-stream.js';
import {
  REMOTE_COMMAND_V1,
  REMOTE_COMMAND_V2,
  REMOTE_COMMAND_V3,
  REMOTE_COMMAND_V4,
  STREAM_TYPE_HEADER,
  StreamType,
} from './constants.js';
import { encodeExecStatus, type RemoteCommandResult } from './exec-status.js';
import { ResizeDecoder, type TerminalSize } from './resize-decoder.js';

export interface RemoteCommandOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** kubelet's NewOptions rules: tty drops stderr, and at least one stream must be asked for. */
export function normalizeRemoteCommandOptions(o: RemoteCommandOptions): RemoteCommandOptions {
  const stderr = o.tty ? false : o.stderr;
  if (!o.stdin && !o.stdout && !stderr) {
    throw new InvalidArgumentError('you must specify at least 1 of stdin, stdout, stderr');
  }
  return { stdin: o.stdin, stdout: o.stdout, stderr, tty: o.tty };
}

const KNOWN_PROTOCOLS = new Set([REMOTE_COMMAND_V1, REMOTE_COMMAND_V2, REMOTE_COMMAND_V3, REMOTE_COMMAND_V4]);

export function supportsTerminalResizing(protocol: string): boolean {
  return protocol === REMOTE_COMMAND_V3 || protocol === REMOTE_COMMAND_V4;
}

export interface AcceptRemoteCommandOptions {
  /** How long the client has to open every expected stream (kubelet: 30 s by default). */
  streamCreationTimeoutMs?: number;
  /** How long finish() waits for queued output to be written before closing anyway. */
  finishTimeoutMs?: number;
}

export interface RemoteCommandEvents {
  resize: [size: TerminalSize];
}

export class RemoteCommandSession extends EventEmitter<RemoteCommandEvents> {
  readonly stdin: SpdyStream | undefined;
  readonly stdout: SpdyStream | undefined;
  readonly stderr: SpdyStream | undefined;
  readonly resize: SpdyStream | undefined;
  readonly error: SpdyStream;
  /** The most recent terminal size the client sent, if any. */
  lastSize: TerminalSize | undefined;
  private finishing: Promise<void> | undefined;

  private constructor(
    readonly connection: SpdyConnection,
    readonly protocol: string,
    readonly options: RemoteCommandOptions,
    streams: Partial<Record<string, SpdyStream>>,
    private readonly finishTimeoutMs: number,
  ) {
    super();
    this.stdin = streams[StreamType.stdin];
    this.stdout = streams[StreamType.stdout];
    this.stderr = streams[StreamType.stderr];
    this.resize = streams[StreamType.resize];
    this.error = streams[StreamType.error]!;
    if (this.resize) this.readResizeEvents(this.resize);
  }

  /**
   * Waits for the client's streams on a freshly upgraded connection. On timeout the connection
   * is closed and a DeadlineExceededError thrown.
   */
  static accept(
    connection: SpdyConnection,
    protocol: string,
    requested: RemoteCommandOptions,
    opts: AcceptRemoteCommandOptions = {},
  ): Promise<RemoteCommandSession> {
    if (!KNOWN_PROTOCOLS.has(protocol)) {
      throw new InvalidArgumentError(`remotecommand subprotocol ${JSON.stringify(protocol)} is not supported over SPDY`);
    }
    const options = normalizeRemoteCommandOptions(requested);
    const wanted = new Set<string>([StreamType.error]);
    if (options.stdin) wanted.add(StreamType.stdin);
    if (options.stdout) wanted.add(StreamType.stdout);
    if (options.stderr) wanted.add(StreamType.stderr);
    if (options.tty && supportsTerminalResizing(protocol)) wanted.add(StreamType.resize);
    const timeoutMs = opts.streamCreationTimeoutMs ?? 30_000;

    return new Promise((resolve, reject) => {
      const streams: Partial<Record<string, SpdyStream>> = {};
      let received = 0;
      const cleanup = (): void => {
        clearTimeout(timer);
        connection.off('stream', onStream);
        connection.off('close', onClose);
      };
      const onStream = (stream: SpdyStream): void => {
        const type = stream.header(STREAM_TYPE_HEADER) ?? '';
        if (!wanted.has(type)) {
          log.warn({ streamType: type, stream: stream.id }, 'remotecommand: unexpected stream type; resetting it');
          stream.reset(RstStatus.REFUSED_STREAM);
          return;
        }
        if (streams[type]) {
          log.warn({ streamType: type, stream: stream.id }, 'remotecommand: duplicate stream; resetting it');
          stream.reset(RstStatus.PROTOCOL_ERROR);
          return;
        }
        streams[type] = stream;
        received++;
        if (received === wanted.size) {
          cleanup();
          resolve(new RemoteCommandSession(connection, protocol, options, streams, opts.finishTimeoutMs ?? 10_000));
        }
      };
      const onClose = (err: Error | undefined): void => {
        cleanup();
        reject(err ?? new InvalidArgumentError('client closed the connection before opening its streams'));
      };
      const timer = setTimeout(() => {
        cleanup();
        const missing = [...wanted].filter((t) => !streams[t]);
        void connection.close();
        reject(new DeadlineExceededError(
          `timed out waiting for client to create streams (missing: ${missing.join(', ')}) after ${timeoutMs} ms`));
      }, timeoutMs);
      connection.on('stream', onStream);
      connection.on('close', onClose);
    });
  }

  /** Settles when the connection ends (the client hung up, or finish() completed). */
  get closed(): Promise<Error | undefined> {
    return this.connection.closed;
  }

  /**
   * Reports the outcome on the error stream, ends our side of every stream, waits (bounded) for
   * queued output to reach the socket, then closes the connection as kubelet does.
   */
  finish(result: RemoteCommandResult): Promise<void> {
    this.finishing ??= this.doFinish(result);
    return this.finishing;
  }

  private async doFinish(result: RemoteCommandResult): Promise<void> {
    const payload = encodeExecStatus(this.protocol, result);
    const outputs = [this.stdout, this.stderr, this.error].filter((s): s is SpdyStream => s !== undefined);
    if (payload.length > 0 && this.error.writable) this.error.write(payload);
    for (const s of outputs) if (s.writable) s.end();
    await Promise.race([
      Promise.all(outputs.map(waitFinished)),
      new Promise((resolve) => setTimeout(resolve, this.finishTimeoutMs).unref()),
    ]);
    await this.connection.close();
  }

  private readResizeEvents(stream: SpdyStream): void {
    const decoder = new ResizeDecoder();
    stream.on('data', (chunk: Buffer) => {
      let sizes: TerminalSize[];
      try {
        sizes = decoder.push(chunk);
      } catch (err) {
        // kubelet stops reading resizes at the first undecodable message; so do we.
        log.warn({ err: (err as Error).message }, 'remotecommand: bad resize message; ignoring further resizes');
        stream.removeAllListeners('data');
        stream.resume();
        return;
      }
      for (const size of sizes) {
        this.lastSize = size;
        this.emit('resize', size);
      }
    });
  }
}

function waitFinished(stream: SpdyStream): Promise<void> {
  if (stream.writableFinished || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('finish', () => resolve());
    stream.once('close', () => resolve());
  });
}
