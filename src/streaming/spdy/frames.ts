// SPDY/3.1 frame layouts (draft 3.1, section 2.2 and 2.6): encoding to bytes and decoding from
// one complete frame. Header blocks stay compressed here; the zlib contexts live in
// header-compression.ts because their state spans the whole connection.
//
// Control frame:  |1| version(15) | type(16) | flags(8) | length(24) | payload
// Data frame:     |0| stream id(31)          | flags(8) | length(24) | payload
import { SpdyProtocolError } from './spdy-errors.js';

export const SPDY_VERSION = 3;
export const FRAME_HEADER_LENGTH = 8;
/** The 24-bit length field caps every frame payload at this many bytes. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

export const ControlType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SettingsId = {
  UPLOAD_BANDWIDTH: 1,
  DOWNLOAD_BANDWIDTH: 2,
  ROUND_TRIP_TIME: 3,
  MAX_CONCURRENT_STREAMS: 4,
  CURRENT_CWND: 5,
  DOWNLOAD_RETRANS_RATE: 6,
  INITIAL_WINDOW_SIZE: 7,
  CLIENT_CERTIFICATE_VECTOR_SIZE: 8,
} as const;

export interface SettingEntry {
  flags: number;
  id: number;
  value: number;
}

/** A frame as it travels: header blocks are the compressed bytes. */
export type SpdyFrame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | {
      type: 'syn_stream';
      streamId: number;
      associatedStreamId: number;
      priority: number;
      slot: number;
      flags: number;
      headerBlock: Buffer;
    }
  | { type: 'syn_reply'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'headers'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; flags: number; entries: SettingEntry[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'window_update'; streamId: number; delta: number };

const MAX_31 = 0x7fffffff;

function checkStreamId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_31) {
    throw new RangeError(`${what} ${id} is not a stream id in 1..2^31-1`);
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`SPDY control frame payload of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  }
  const head = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return head;
}

/** The 8-byte header of a data frame; the payload is written after it without copying. */
export function encodeDataHeader(streamId: number, flags: number, length: number): Buffer {
  checkStreamId(streamId, 'data frame stream id');
  if (length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`SPDY data frame payload of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  }
  const head = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  head.writeUInt32BE(streamId & MAX_31, 0);
  head.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return head;
}

/** Encodes one frame into its wire bytes. */
export function encodeFrame(frame: SpdyFrame): Buffer {
  switch (frame.type) {
    case 'data':
      return Buffer.concat([encodeDataHeader(frame.streamId, frame.flags, frame.data.length), frame.data]);
    case 'syn_stream': {
      checkStreamId(frame.streamId, 'SYN_STREAM stream id');
      const body = Buffer.allocUnsafe(10);
      body.writeUInt32BE(frame.streamId & MAX_31, 0);
      body.writeUInt32BE(frame.associatedStreamId & MAX_31, 4);
      body.writeUInt8((frame.priority & 0x07) << 5, 8);
      body.writeUInt8(frame.slot & 0xff, 9);
      const length = body.length + frame.headerBlock.length;
      return Buffer.concat([controlHeader(ControlType.SYN_STREAM, frame.flags, length), body, frame.headerBlock]);
    }
    case 'syn_reply':
    case 'headers': {
      checkStreamId(frame.streamId, `${frame.type.toUpperCase()} stream id`);
      const body = Buffer.allocUnsafe(4);
      body.writeUInt32BE(frame.streamId & MAX_31, 0);
      const type = frame.type === 'syn_reply' ? ControlType.SYN_REPLY : ControlType.HEADERS;
      return Buffer.concat([controlHeader(type, frame.flags, 4 + frame.headerBlock.length), body, frame.headerBlock]);
    }
    case 'rst_stream': {
      checkStreamId(frame.streamId, 'RST_STREAM stream id');
      const body = Buffer.allocUnsafe(8);
      body.writeUInt32BE(frame.streamId & MAX_31, 0);
      body.writeUInt32BE(frame.status >>> 0, 4);
      return Buffer.concat([controlHeader(ControlType.RST_STREAM, 0, 8), body]);
    }
    case 'settings': {
      const body = Buffer.allocUnsafe(4 + 8 * frame.entries.length);
      body.writeUInt32BE(frame.entries.length, 0);
      frame.entries.forEach((e, i) => {
        body.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
        body.writeUInt32BE(e.value >>> 0, 8 + i * 8);
      });
      return Buffer.concat([controlHeader(ControlType.SETTINGS, frame.flags, body.length), body]);
    }
    case 'ping': {
      const body = Buffer.allocUnsafe(4);
      body.writeUInt32BE(frame.id >>> 0, 0);
      return Buffer.concat([controlHeader(ControlType.PING, 0, 4), body]);
    }
    case 'goaway': {
      const body = Buffer.allocUnsafe(8);
      body.writeUInt32BE(frame.lastGoodStreamId & MAX_31, 0);
      body.writeUInt32BE(frame.status >>> 0, 4);
      return Buffer.concat([controlHeader(ControlType.GOAWAY, 0, 8), body]);
    }
    case 'window_update': {
      // SPDY/3.1 uses stream id 0 for the connection-level window.
      if (frame.streamId !== 0) checkStreamId(frame.streamId, 'WINDOW_UPDATE stream id');
      if (!Number.isInteger(frame.delta) || frame.delta < 1 || frame.delta > MAX_31) {
        throw new RangeError(`WINDOW_UPDATE delta ${frame.delta} is not in 1..2^31-1`);
      }
      const body = Buffer.allocUnsafe(8);
      body.writeUInt32BE(frame.streamId & MAX_31, 0);
      body.writeUInt32BE(frame.delta & MAX_31, 4);
      return Buffer.concat([controlHeader(ControlType.WINDOW_UPDATE, 0, 8), body]);
    }
  }
}

function requireLength(name: string, payload: Buffer, exact?: number, min?: number): void {
  if (exact !== undefined && payload.length !== exact) {
    throw new SpdyProtocolError(`malformed SPDY ${name} frame: payload is ${payload.length} bytes, expected ${exact}`);
  }
  if (min !== undefined && payload.length < min) {
    throw new SpdyProtocolError(`malformed SPDY ${name} frame: payload is ${payload.length} bytes, expected at least ${min}`);
  }
}

function requireStreamId(name: string, id: number): number {
  if (id === 0) throw new SpdyProtocolError(`malformed SPDY ${name} frame: stream id 0 is not allowed`);
  return id;
}

/**
 * Decodes a control frame from its 8-byte header fields and payload. Unknown control types
 * return undefined: the spec says to ignore them (CREDENTIAL, the retired NOOP).
 */
export function decodeControlFrame(version: number, type: number, flags: number, payload: Buffer): SpdyFrame | undefined {
  if (version !== SPDY_VERSION) {
    throw new SpdyProtocolError(`unsupported SPDY version ${version} in control frame (only 3 is spoken)`);
  }
  switch (type) {
    case ControlType.SYN_STREAM: {
      requireLength('SYN_STREAM', payload, undefined, 10);
      return {
        type: 'syn_stream',
        streamId: requireStreamId('SYN_STREAM', payload.readUInt32BE(0) & MAX_31),
        associatedStreamId: payload.readUInt32BE(4) & MAX_31,
        priority: payload.readUInt8(8) >> 5,
        slot: payload.readUInt8(9),
        flags,
        headerBlock: payload.subarray(10),
      };
    }
    case ControlType.SYN_REPLY:
    case ControlType.HEADERS: {
      const name = type === ControlType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS';
      requireLength(name, payload, undefined, 4);
      return {
        type: type === ControlType.SYN_REPLY ? 'syn_reply' : 'headers',
        streamId: requireStreamId(name, payload.readUInt32BE(0) & MAX_31),
        flags,
        headerBlock: payload.subarray(4),
      };
    }
    case ControlType.RST_STREAM: {
      requireLength('RST_STREAM', payload, 8);
      const status = payload.readUInt32BE(4);
      if (status === 0) throw new SpdyProtocolError('malformed SPDY RST_STREAM frame: status 0 is not defined');
      return { type: 'rst_stream', streamId: requireStreamId('RST_STREAM', payload.readUInt32BE(0) & MAX_31), status };
    }
    case ControlType.SETTINGS: {
      requireLength('SETTINGS', payload, undefined, 4);
      const count = payload.readUInt32BE(0);
      if (payload.length !== 4 + count * 8) {
        throw new SpdyProtocolError(
          `malformed SPDY SETTINGS frame: ${count} entries need ${4 + count * 8} bytes, payload is ${payload.length}`);
      }
      const entries: SettingEntry[] = [];
      for (let i = 0; i < count; i++) {
        const word = payload.readUInt32BE(4 + i * 8);
        entries.push({ flags: word >>> 24, id: word & 0xffffff, value: payload.readUInt32BE(8 + i * 8) });
      }
      return { type: 'settings', flags, entries };
    }
    case ControlType.PING:
      requireLength('PING', payload, 4);
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case ControlType.GOAWAY:
      requireLength('GOAWAY', payload, 8);
      return { type: 'goaway', lastGoodStreamId: payload.readUInt32BE(0) & MAX_31, status: payload.readUInt32BE(4) };
    case ControlType.WINDOW_UPDATE: {
      requireLength('WINDOW_UPDATE', payload, 8);
      const delta = payload.readUInt32BE(4) & MAX_31;
      if (delta === 0) throw new SpdyProtocolError('malformed SPDY WINDOW_UPDATE frame: delta window size 0');
      return { type: 'window_update', streamId: payload.readUInt32BE(0) & MAX_31, delta };
    }
    default:
      return undefined;
  }
}
