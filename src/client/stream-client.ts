// Client side of the CRI streaming URLs the daemon returns from Exec, Attach and PortForward,
// over WebSocket with Kubernetes' channel protocols (the codec is the server's own,
// src/streaming/protocol/ws-channel.ts). remotecommand: channels 0 stdin, 1 stdout, 2 stderr,
// 3 status (metav1.Status JSON), 4 resize; v5's CLOSE signal ends stdin without ending the call.
import type { Duplex, Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { Channel, WS_CHANNEL_V5, decodeChannelMessage, encodeChannelMessage, encodeCloseSignal } from '../streaming/protocol/ws-channel.js';
import { EXIT_CODE_CAUSE_TYPE, NON_ZERO_EXIT_CODE_REASON } from '../streaming/protocol/constants.js';
import type { MetaV1Status } from '../streaming/protocol/exec-status.js';

/** The URL the daemon returned, as a WebSocket URL. */
export function webSocketUrl(url: string): string {
  return url.replace(/^http(s?):\/\//, 'ws$1://');
}

export interface RemoteCommandIo {
  stdin?: Readable;
  stdout: Writable;
  /** Absent with a TTY: the terminal merges both outputs. */
  stderr?: Writable;
  /** The first size and later changes of the local terminal. */
  terminalSize?: () => { width: number; height: number } | undefined;
  onResize?: (listener: () => void) => () => void;
}

/** How a remote command ended: its exit code, or why it could not run. */
export type RemoteCommandOutcome = { exitCode: number } | { error: string };

export function outcomeOfStatus(text: string): RemoteCommandOutcome {
  let status: MetaV1Status;
  try {
    status = JSON.parse(text) as MetaV1Status;
  } catch {
    return { error: text };
  }
  if (status.status === 'Success') return { exitCode: 0 };
  if (status.reason === NON_ZERO_EXIT_CODE_REASON) {
    const cause = status.details?.causes?.find((c) => c.reason === EXIT_CODE_CAUSE_TYPE);
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return { exitCode: code };
  }
  return { error: status.message ?? text };
}

/**
 * Open a WebSocket; `onMessage` is attached before the handshake completes, because the server
 * may send its first messages (port prefixes, early output) in the same packet as the upgrade.
 */
function open(url: string, protocols: string[], onMessage: (raw: Buffer, binary: boolean) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(webSocketUrl(url), protocols);
    ws.on('message', (raw: Buffer, binary: boolean) => {
      try {
        onMessage(raw, binary);
      } catch (err) {
        // A message that does not fit the protocol: nothing after it can be trusted.
        ws.emit('error', new Error(`the streaming server sent a malformed message: ${(err as Error).message}`));
        ws.terminate();
      }
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString().slice(0, 1024)));
      res.on('end', () => reject(new Error(`the streaming server refused the connection (HTTP ${res.statusCode}): ${body.trim()}`)));
    });
    ws.once('error', reject);
  });
}

/** Run an exec or attach session to the end; resolves with how the command ended. */
export async function runRemoteCommand(url: string, io: RemoteCommandIo): Promise<RemoteCommandOutcome> {
  const protocol = WS_CHANNEL_V5;
  let status = '';
  const ws = await open(url, [protocol], (raw, binary) => {
    const msg = decodeChannelMessage(protocol, raw, binary);
    if (msg.kind !== 'data') return;
    if (msg.channel === Channel.stdout) io.stdout.write(msg.data);
    else if (msg.channel === Channel.stderr) (io.stderr ?? io.stdout).write(msg.data);
    else if (msg.channel === Channel.error) status += msg.data.toString();
  });
  const send = (channel: number, data: Buffer): void => {
    if (ws.readyState !== ws.OPEN) return;
    const msg = encodeChannelMessage(protocol, channel, data);
    ws.send(msg.data, { binary: msg.binary });
  };
  const sendSize = (): void => {
    const size = io.terminalSize?.();
    if (size) send(Channel.resize, Buffer.from(JSON.stringify({ Width: size.width, Height: size.height })));
  };
  sendSize();
  const stopResize = io.onResize?.(sendSize);
  const onStdin = (chunk: Buffer): void => send(Channel.stdin, chunk);
  const onStdinEnd = (): void => {
    if (ws.readyState !== ws.OPEN) return;
    const msg = encodeCloseSignal(protocol, Channel.stdin);
    ws.send(msg.data, { binary: msg.binary });
  };
  io.stdin?.on('data', onStdin);
  io.stdin?.once('end', onStdinEnd);
  try {
    if (ws.readyState !== ws.CLOSED) {
      await new Promise<void>((resolve, reject) => {
        ws.once('close', () => resolve());
        ws.once('error', reject);
      });
    }
  } finally {
    stopResize?.();
    io.stdin?.off('data', onStdin);
    io.stdin?.off('end', onStdinEnd);
  }
  return status === '' ? { error: 'the streaming connection closed before the command reported how it ended' } : outcomeOfStatus(status);
}

/**
 * Forward one local connection to a pod port through a port-forward URL (single use: one URL per
 * connection). Resolves when both directions are done; rejects with the server's error text.
 */
export async function forwardConnection(url: string, port: number, local: Duplex): Promise<void> {
  const u = new URL(url);
  u.searchParams.set('ports', String(port));
  const codec = 'v4.channel.k8s.io';
  const seenPrefix = new Set<number>();
  let errorText = '';
  const ws = await open(u.toString(), [codec], (raw, binary) => {
    const msg = decodeChannelMessage(codec, raw, binary);
    if (msg.kind !== 'data') return;
    let data = msg.data;
    // The server opens each channel with the port number (2 bytes): not part of the stream.
    if (!seenPrefix.has(msg.channel)) {
      seenPrefix.add(msg.channel);
      data = data.subarray(2);
    }
    if (msg.channel === 0) {
      if (data.length > 0) local.write(data);
    } else if (msg.channel === 1) errorText += data.toString();
  });
  local.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    const msg = encodeChannelMessage(codec, 0, chunk);
    ws.send(msg.data, { binary: msg.binary });
  });
  // The channel protocol has no half-close: the local side's end of input is not passed on (the
  // pod's reply still has to come back); the forward ends when the pod side closes, or when
  // the local connection is gone altogether.
  local.once('close', () => {
    if (ws.readyState === ws.OPEN) ws.close(1000);
  });
  local.once('error', () => ws.terminate());
  if (ws.readyState !== ws.CLOSED) await new Promise<void>((resolve) => ws.once('close', () => resolve()));
  local.end();
  if (errorText) throw new Error(errorText);
}
