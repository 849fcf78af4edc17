import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import {
  Channel,
  WS_BASE64_CHANNEL_V1,
  WS_BASE64_CHANNEL_V4,
  WS_CHANNEL_V1,
  WS_CHANNEL_V4,
  WS_CHANNEL_V5,
  decodeChannelMessage,
  decodePortPrefix,
  encodeChannelMessage,
  encodeCloseSignal,
  encodePortPrefix,
} from './ws-channel.js';

describe('Kubernetes WebSocket channel protocols', () => {
  it('binary protocols prefix one channel byte', () => {
    for (const p of [WS_CHANNEL_V1, WS_CHANNEL_V4, WS_CHANNEL_V5]) {
      const m = encodeChannelMessage(p, Channel.stdout, Buffer.from('foo\n'));
      expect(m.binary).toBe(true);
      expect([...m.data]).toEqual([1, 102, 111, 111, 10]);
      expect(decodeChannelMessage(p, m.data, true)).toEqual({ kind: 'data', channel: 1, data: Buffer.from('foo\n') });
    }
  });

  it('base64 protocols prefix an ASCII digit and base64 the payload in a text message', () => {
    for (const p of [WS_BASE64_CHANNEL_V1, WS_BASE64_CHANNEL_V4]) {
      const m = encodeChannelMessage(p, Channel.stderr, Buffer.from([0xff, 0x00, 0x41]));
      expect(m.binary).toBe(false);
      expect(m.data.toString()).toBe('2/wBB');
      expect(decodeChannelMessage(p, '2/wBB', false)).toEqual({ kind: 'data', channel: 2, data: Buffer.from([0xff, 0x00, 0x41]) });
    }
    expect(() => encodeChannelMessage(WS_BASE64_CHANNEL_V4, 12, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => decodeChannelMessage(WS_BASE64_CHANNEL_V4, 'x/wBB', false)).toThrow(InvalidArgumentError);
    expect(() => decodeChannelMessage(WS_BASE64_CHANNEL_V4, '1@@@', false)).toThrow(InvalidArgumentError);
  });

  it('v5 adds the CLOSE signal on channel 255; older protocols treat 255 as data', () => {
    const close = encodeCloseSignal(WS_CHANNEL_V5, Channel.stdin);
    expect([...close.data]).toEqual([255, 0]);
    expect(decodeChannelMessage(WS_CHANNEL_V5, close.data, true)).toEqual({ kind: 'close', channel: 0 });
    expect(decodeChannelMessage(WS_CHANNEL_V4, close.data, true)).toEqual({ kind: 'data', channel: 255, data: Buffer.from([0]) });
    expect(() => encodeCloseSignal(WS_CHANNEL_V4, 0)).toThrow(InvalidArgumentError);
    expect(() => decodeChannelMessage(WS_CHANNEL_V5, Buffer.from([255, 1, 2]), true)).toThrow(InvalidArgumentError);
  });

  it('rejects messages that do not fit the protocol', () => {
    expect(() => decodeChannelMessage(WS_CHANNEL_V4, Buffer.alloc(0), true)).toThrow(InvalidArgumentError);
    expect(() => decodeChannelMessage(WS_CHANNEL_V4, 'text', false)).toThrow(InvalidArgumentError);
    expect(() => decodeChannelMessage('v9.channel.k8s.io', Buffer.from([1]), true)).toThrow(InvalidArgumentError);
  });

  it('port-forward channels start with the port as little-endian uint16', () => {
    expect([...encodePortPrefix(8080)]).toEqual([0x90, 0x1f]);
    expect(decodePortPrefix(Buffer.from([0x90, 0x1f, 0x61]))).toEqual({ port: 8080, rest: Buffer.from('a') });
    expect(() => encodePortPrefix(0)).toThrow(RangeError);
  });
});
