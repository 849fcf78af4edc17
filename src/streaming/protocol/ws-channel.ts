// The WebSocket channel protocols of Kubernetes streaming (apimachinery wsstream and the v5
// remotecommand protocol), as pure encode/decode functions for use with the `ws` package:
//   channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io   binary messages, first byte = channel
//   base64.channel.k8s.io, v4.base64.channel.k8s.io        text messages, first char = ASCII
//                                                          digit of the channel, rest base64
// v5 adds a CLOSE signal: a binary message [255, channel] half-closes that channel.
// Remotecommand channels follow the file descriptors: 0 stdin, 1 stdout, 2 stderr, 3 error,
// 4 resize. Port-forward over WebSocket prefixes the first message of each channel with the
// port as a little-endian uint16.
import { InvalidArgumentError } from '../../errors.js';

export const WS_CHANNEL_V1 = 'channel.k8s.io';
export const WS_BASE64_CHANNEL_V1 = 'base64.channel.k8s.io';
export const WS_CHANNEL_V4 = 'v4.channel.k8s.io';
export const WS_BASE64_CHANNEL_V4 = 'v4.base64.channel.k8s.io';
export const WS_CHANNEL_V5 = 'v5.channel.k8s.io';

export const SUPPORTED_WS_PROTOCOLS: readonly string[] = [
  WS_CHANNEL_V5, WS_CHANNEL_V4, WS_BASE64_CHANNEL_V4, WS_CHANNEL_V1, WS_BASE64_CHANNEL_V1,
];

export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;
/** v5: the channel id of the CLOSE signal message. */
export const CLOSE_CHANNEL = 255;

export type WsMessage = { data: Buffer; binary: boolean };
export type DecodedChannelMessage =
  | { kind: 'data'; channel: number; data: Buffer }
  | { kind: 'close'; channel: number };

export function isBase64Protocol(protocol: string): boolean {
  return protocol === WS_BASE64_CHANNEL_V1 || protocol === WS_BASE64_CHANNEL_V4;
}

function checkProtocol(protocol: string): void {
  if (!SUPPORTED_WS_PROTOCOLS.includes(protocol)) {
    throw new InvalidArgumentError(`WebSocket subprotocol ${JSON.stringify(protocol)} is not a Kubernetes channel protocol`);
  }
}

/** Encodes data for one channel under the given subprotocol. */
export function encodeChannelMessage(protocol: string, channel: number, data: Buffer): WsMessage {
  checkProtocol(protocol);
  if (!Number.isInteger(channel) || channel < 0 || channel > 254) {
    throw new RangeError(`channel ${channel} is not in 0..254`);
  }
  if (isBase64Protocol(protocol)) {
    // One ASCII digit carries the channel, so base64 protocols reach only channels 0..9.
    if (channel > 9) throw new RangeError(`channel ${channel} cannot be written in a base64 protocol`);
    return { data: Buffer.from(String.fromCharCode(0x30 + channel) + data.toString('base64'), 'latin1'), binary: false };
  }
  const out = Buffer.allocUnsafe(1 + data.length);
  out[0] = channel;
  data.copy(out, 1);
  return { data: out, binary: true };
}

/** v5 only: the message that half-closes a channel. */
export function encodeCloseSignal(protocol: string, channel: number): WsMessage {
  if (protocol !== WS_CHANNEL_V5) throw new InvalidArgumentError(`the CLOSE signal needs ${WS_CHANNEL_V5}, not ${protocol}`);
  if (!Number.isInteger(channel) || channel < 0 || channel > 254) throw new RangeError(`channel ${channel} is not in 0..254`);
  return { data: Buffer.from([CLOSE_CHANNEL, channel]), binary: true };
}

/** Decodes one received message. Throws InvalidArgumentError when it does not fit the protocol. */
export function decodeChannelMessage(protocol: string, message: Buffer | string, binary: boolean): DecodedChannelMessage {
  checkProtocol(protocol);
  const bytes = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  if (bytes.length === 0) throw new InvalidArgumentError('empty WebSocket message carries no channel');
  if (isBase64Protocol(protocol)) {
    if (binary) throw new InvalidArgumentError(`${protocol} expects text messages, got a binary one`);
    const digit = bytes[0]! - 0x30;
    if (digit < 0 || digit > 9) throw new InvalidArgumentError(`base64 channel prefix ${JSON.stringify(String.fromCharCode(bytes[0]!))} is not a digit`);
    const text = bytes.subarray(1).toString('latin1');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
      throw new InvalidArgumentError(`channel ${digit} message is not valid base64`);
    }
    return { kind: 'data', channel: digit, data: Buffer.from(text, 'base64') };
  }
  if (!binary) throw new InvalidArgumentError(`${protocol} expects binary messages, got a text one`);
  const channel = bytes[0]!;
  if (channel === CLOSE_CHANNEL && protocol === WS_CHANNEL_V5) {
    if (bytes.length !== 2) throw new InvalidArgumentError(`v5 CLOSE signal must be 2 bytes, got ${bytes.length}`);
    return { kind: 'close', channel: bytes[1]! };
  }
  return { kind: 'data', channel, data: bytes.subarray(1) };
}

/** Port-forward over WebSocket: the first message of each channel starts with the port. */
export function encodePortPrefix(port: number): Buffer {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port ${port} is not in 1..65535`);
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16LE(port, 0);
  return b;
}

export function decodePortPrefix(data: Buffer): { port: number; rest: Buffer } {
  if (data.length < 2) throw new InvalidArgumentError('port-forward channel message too short for its port prefix');
  return { port: data.readUInt16LE(0), rest: data.subarray(2) };
}
