import { describe, expect, it } from 'vitest';
import { FrameReader } from './frame-reader.js';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  GoAwayStatus,
  RstStatus,
  SettingsId,
  encodeFrame,
  type SpdyFrame,
} from './frames.js';
import { SpdyLimitError, SpdyProtocolError } from './spdy-errors.js';

const limits = { maxDataFrameLength: 0xffffff, maxControlFrameLength: 64 * 1024 };

function roundTrip(frame: SpdyFrame, chunkSize?: number): SpdyFrame {
  const bytes = encodeFrame(frame);
  const reader = new FrameReader(limits);
  if (chunkSize) {
    for (let i = 0; i < bytes.length; i += chunkSize) reader.push(bytes.subarray(i, i + chunkSize));
  } else {
    reader.push(bytes);
  }
  const out = reader.next();
  expect(reader.next()).toBeUndefined();
  expect(reader.bufferedBytes).toBe(0);
  return out!;
}

const everyFrame: SpdyFrame[] = [
  { type: 'data', streamId: 7, flags: FLAG_FIN, data: Buffer.from('hello world') },
  { type: 'data', streamId: 0x7fffffff, flags: 0, data: Buffer.alloc(0) },
  { type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: Buffer.from([1, 2, 3]) },
  { type: 'syn_stream', streamId: 5, associatedStreamId: 3, priority: 7, slot: 9, flags: FLAG_FIN | FLAG_UNIDIRECTIONAL, headerBlock: Buffer.from('abc') },
  { type: 'syn_reply', streamId: 2, flags: FLAG_FIN, headerBlock: Buffer.from('xyz') },
  { type: 'headers', streamId: 9, flags: 0, headerBlock: Buffer.from('h') },
  { type: 'rst_stream', streamId: 3, status: RstStatus.CANCEL },
  { type: 'settings', flags: 0, entries: [{ flags: 1, id: SettingsId.INITIAL_WINDOW_SIZE, value: 1 << 20 }, { flags: 0, id: SettingsId.MAX_CONCURRENT_STREAMS, value: 100 }] },
  { type: 'settings', flags: 1, entries: [] },
  { type: 'ping', id: 0xfffffffe },
  { type: 'goaway', lastGoodStreamId: 11, status: GoAwayStatus.PROTOCOL_ERROR },
  { type: 'window_update', streamId: 3, delta: 0x7fffffff },
  { type: 'window_update', streamId: 0, delta: 1 },
];

describe('SPDY frame codec', () => {
  it.each(everyFrame.map((f) => [f.type, f] as const))('round-trips %s', (_t, frame) => {
    expect(roundTrip(frame)).toEqual(frame);
    // Delivered one byte at a time, the reader must assemble the same frame.
    expect(roundTrip(frame, 1)).toEqual(frame);
  });

  it('writes the spec layout: control bit, version 3, type, flags and 24-bit length', () => {
    const syn = encodeFrame({ type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: FLAG_FIN, headerBlock: Buffer.alloc(4) });
    expect([...syn.subarray(0, 8)]).toEqual([0x80, 0x03, 0x00, 0x01, 0x01, 0x00, 0x00, 14]);
    const data = encodeFrame({ type: 'data', streamId: 0x01020304, flags: FLAG_FIN, data: Buffer.alloc(0x010203) });
    expect([...data.subarray(0, 8)]).toEqual([0x01, 0x02, 0x03, 0x04, 0x01, 0x01, 0x02, 0x03]);
    const ping = encodeFrame({ type: 'ping', id: 1 });
    expect([...ping]).toEqual([0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]);
  });

  it('reads several frames from one chunk and keeps a partial frame for later', () => {
    const a = encodeFrame(everyFrame[0]!);
    const b = encodeFrame(everyFrame[6]!);
    const reader = new FrameReader(limits);
    reader.push(Buffer.concat([a, b.subarray(0, 5)]));
    expect(reader.next()).toEqual(everyFrame[0]);
    expect(reader.next()).toBeUndefined();
    reader.push(b.subarray(5));
    expect(reader.next()).toEqual(everyFrame[6]);
  });

  it('skips unknown control frame types as the spec requires', () => {
    const unknown = Buffer.from([0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb]);
    const reader = new FrameReader(limits);
    reader.push(Buffer.concat([unknown, encodeFrame(everyFrame[9]!)]));
    expect(reader.next()).toEqual(everyFrame[9]);
  });

  const malformed: Array<[string, Buffer, new (...a: never[]) => Error]> = [
    ['version 2 control frame', Buffer.from([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1]), SpdyProtocolError],
    ['short RST_STREAM', Buffer.from([0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1]), SpdyProtocolError],
    ['RST_STREAM status 0', Buffer.from([0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]), SpdyProtocolError],
    ['SYN_STREAM stream 0', Buffer.from([0x80, 0x03, 0x00, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), SpdyProtocolError],
    ['SYN_STREAM too short', Buffer.from([0x80, 0x03, 0x00, 0x01, 0, 0, 0, 4, 0, 0, 0, 1]), SpdyProtocolError],
    ['SETTINGS count lies', Buffer.from([0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 9]), SpdyProtocolError],
    ['WINDOW_UPDATE delta 0', Buffer.from([0x80, 0x03, 0x00, 0x09, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]), SpdyProtocolError],
    ['data frame on stream 0', Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]), SpdyProtocolError],
    ['data frame with unknown flags', Buffer.from([0, 0, 0, 1, 0x80, 0, 0, 0]), SpdyProtocolError],
    ['oversized control frame', Buffer.from([0x80, 0x03, 0x00, 0x01, 0, 0x10, 0, 0]), SpdyLimitError],
  ];
  it.each(malformed)('rejects a %s', (_name, bytes, type) => {
    const reader = new FrameReader(limits);
    reader.push(bytes);
    expect(() => reader.next()).toThrow(type);
  });

  it('refuses an oversized data frame from its header alone, before the payload arrives', () => {
    const reader = new FrameReader({ ...limits, maxDataFrameLength: 1024 });
    reader.push(Buffer.from([0, 0, 0, 1, 0, 0, 0x04, 0x01]));
    expect(() => reader.next()).toThrow(/exceeds the limit of 1024/);
  });

  it('refuses to encode ids and lengths the wire cannot carry', () => {
    expect(() => encodeFrame({ type: 'rst_stream', streamId: 0, status: 1 })).toThrow(RangeError);
    expect(() => encodeFrame({ type: 'window_update', streamId: 1, delta: 0 })).toThrow(RangeError);
  });
});
