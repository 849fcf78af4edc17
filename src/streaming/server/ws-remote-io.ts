// RemoteCommandIo over a WebSocket speaking the Kubernetes channel protocols (kubelet's
// wsstream): channel 0 stdin, 1 stdout, 2 stderr, 3 error (a metav1.Status as JSON under v4 and
// v5, plain text before), 4 resize ({"Width","Height"} JSON). v5 adds the CLOSE signal, which
// half-closes stdin; older protocols end stdin only with the connection. A malformed message
// closes the connection with a policy-violation code: nothing after it can be trusted.
import { PassThrough, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { log } from '../../log.js';
import { REMOTE_COMMAND_V1, REMOTE_COMMAND_V4 } from '../protocol/constants.js';
import { encodeExecStatus, type RemoteCommandResult } from '../protocol/exec-status.js';
import { parseTerminalSize, type TerminalSize } from '../protocol/resize-decoder.js';
import { Channel, decodeChannelMessage, encodeChannelMessage } from '../protocol/ws-channel.js';
import type { RemoteCommandIo, StreamFlags } from './remote-io.js';

/** WebSocket close codes (RFC 6455). */
export const WS_NORMAL = 1000;
export const WS_POLICY_VIOLATION = 1008;
export const WS_INTERNAL_ERROR = 1011;

/** A Writable that sends each chunk as a message on one channel; paced by the socket. */
export class ChannelWriter extends Writable {
  constructor(
    private readonly ws: WebSocket,
    private readonly protocol: string,
    private readonly channel: number,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      cb();
      return;
    }
    const msg = encodeChannelMessage(this.protocol, this.channel, chunk);
    // The callback fires once the frame is handed to the socket, so a client that does not
    // read makes our writes pending and the producer pauses.
    this.ws.send(msg.data, { binary: msg.binary }, (err) => cb(err ?? null));
  }
}

export class WsRemoteIo implements RemoteCommandIo {
  readonly stdin: PassThrough | undefined;
  readonly stdout: Writable | undefined;
  readonly stderr: Writable | undefined;
  readonly closed: Promise<unknown>;
  private readonly resizeListeners: ((size: TerminalSize) => void)[] = [];
  /** The latest size, for listeners that arrive later (the process starts after the client). */
  private lastSize: TerminalSize | undefined;
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly protocol: string,
    flags: StreamFlags,
  ) {
    this.stdin = flags.stdin ? new PassThrough() : undefined;
    this.stdout = flags.stdout ? this.writer(Channel.stdout) : undefined;
    this.stderr = flags.stderr && !flags.tty ? this.writer(Channel.stderr) : undefined;
    this.closed = new Promise((resolve) => ws.once('close', resolve));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', () => this.stdin?.end());
    ws.on('error', (err) => log.debug({ err: err.message }, 'websocket stream error'));
  }

  private writer(channel: number): Writable {
    const w = new ChannelWriter(this.ws, this.protocol, channel);
    w.on('error', () => undefined);
    return w;
  }

  onResize(listener: (size: TerminalSize) => void): void {
    this.resizeListeners.push(listener);
    // Clients send their size right after connecting, usually before the process exists: a
    // size that arrived earlier is replayed, or the terminal would start at 0x0.
    if (this.lastSize) listener(this.lastSize);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    let msg;
    try {
      msg = decodeChannelMessage(this.protocol, data, isBinary);
      if (msg.kind === 'close') {
        if (msg.channel === Channel.stdin) this.stdin?.end();
        return;
      }
      if (msg.channel === Channel.stdin) {
        if (this.stdin && !this.stdin.writableEnded) this.stdin.write(msg.data);
      } else if (msg.channel === Channel.resize) {
        if (msg.data.length === 0) return;
        const size = parseTerminalSize(msg.data.toString('utf8'));
        this.lastSize = size;
        for (const l of this.resizeListeners) l(size);
      }
      // Anything else from the client (on an output channel) is ignored, as kubelet does.
    } catch (err) {
      log.info({ err: (err as Error).message }, 'websocket stream: malformed message; closing the connection');
      this.ws.close(WS_POLICY_VIOLATION, truncateReason((err as Error).message));
    }
  }

  finish(result: RemoteCommandResult): Promise<void> {
    this.finishing ??= this.doFinish(result);
    return this.finishing;
  }

  private async doFinish(result: RemoteCommandResult): Promise<void> {
    // Outputs first: the status must be the last thing the client reads.
    await Promise.all([this.stdout, this.stderr].map((w) => (w ? endWritable(w) : undefined)));
    const versioned = this.protocol.startsWith('v4.') || this.protocol.startsWith('v5.');
    const payload = encodeExecStatus(versioned ? REMOTE_COMMAND_V4 : REMOTE_COMMAND_V1, result);
    if (payload.length > 0 && this.ws.readyState === this.ws.OPEN) {
      const msg = encodeChannelMessage(this.protocol, Channel.error, payload);
      await new Promise<void>((resolve) => this.ws.send(msg.data, { binary: msg.binary }, () => resolve()));
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(WS_NORMAL);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
  }
}

export function endWritable(w: Writable): Promise<void> {
  if (w.writableFinished || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('finish', () => resolve());
    w.once('close', () => resolve());
    w.once('error', () => resolve());
    w.end();
  });
}

/** Close reasons must fit in a control frame (123 bytes). */
export function truncateReason(text: string): string {
  const b = Buffer.from(text, 'utf8');
  return b.length <= 120 ? text : b.subarray(0, 120).toString('utf8');
}
