// kubelet, crictl and critest built before Kubernetes 1.31 send the unix socket's path
// ("/run/crib/crib.sock") as the HTTP/2 :authority. Node's HTTP/2 layer (nghttp2) rejects that
// as a malformed header and resets every stream, so those clients could not talk to crib at all.
// This transform sits between the socket and the gRPC server: it decodes each header block the
// client sends, replaces an :authority that is not a valid host with "localhost" (what newer
// clients send), and re-encodes it. All other frames pass through untouched, and the
// server-to-client direction is not touched at all. The listener (grpc-listener.ts) reads every
// connection through it up to the first request, and keeps only the connections that needed a
// rewrite behind it; the others go to the server on the bare socket from there.
//
// HPACK is stateful, so every client header block is decoded (our decoder stays in step with the
// client's encoder), but a block is re-encoded only when it has to be. Until the first rewrite,
// blocks go to the server as the client framed them, and the server's decoder follows the
// client's table as ours does. From the first rewrite on, the server's table no longer matches
// the client's, so every later block is re-encoded too, as literals that never touch the dynamic
// table: the server decodes them whatever its table holds, and no encoder state has to be kept.
// (hpack.js's stateful encoder cost about 80 us per call, most of it in a deprecated Buffer
// constructor; a new client never pays even the stateless encoding.)
//
// Being the first to read what a client sends, the filter is also where its size is bounded.
// A header block arrives as HEADERS plus any number of CONTINUATION frames and has to be held
// whole before it can be decoded; without a bound a client could stream CONTINUATION frames
// forever and the daemon would hold all of it (512 MB of them once grew it to 719 MB). So:
//   - a frame larger than SETTINGS_MAX_FRAME_SIZE is refused from its 9-byte header, before its
//     payload is buffered;
//   - a header block larger than MAX_HEADER_LIST_BYTES, compressed or decoded, is refused;
//   - a frame of any other kind inside a header block is a protocol error (RFC 9113 §6.10);
//   - HPACK tables stay at the 4096 bytes both sides agreed on.
// Each refusal ends the connection with a GOAWAY naming the limit (an Http2ConnectionError the
// listener turns into the frame); nothing more from that client is read.
import { Transform, type TransformCallback } from 'node:stream';
import hpack from 'hpack.js';

const PREFACE_LENGTH = 24;
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_GOAWAY = 0x7;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** The default SETTINGS_MAX_FRAME_SIZE; gRPC servers do not raise it. */
const MAX_FRAME = 16384;
/**
 * The largest header block accepted, compressed or as a decoded header list (RFC 7541 entry
 * sizes): Node's HTTP/2 server advertises and enforces SETTINGS_MAX_HEADER_LIST_SIZE 65535 behind
 * this filter, so nothing the server would accept is refused here. gRPC metadata is a few
 * hundred bytes; grpc-go clients cap what they send at 16 KiB by default.
 */
export const MAX_HEADER_LIST_BYTES = 65536;
/**
 * CONTINUATION frames after one HEADERS: nghttp2's own limit behind this filter (8 since 1.61),
 * so no block the server would take is refused. Empty CONTINUATIONs add nothing to the block's
 * size, so without a count a client could send them forever and the filter hold each one.
 */
export const MAX_CONTINUATIONS = 8;
/** SETTINGS_HEADER_TABLE_SIZE: Node's default, which the server advertises; clients never raise it. */
const HPACK_TABLE_BYTES = 4096;
/** RFC 7541 §4.1: each header list entry costs its name and value plus 32. */
const ENTRY_OVERHEAD = 32;
/** RFC 9113 §7 error codes. */
export const H2_PROTOCOL_ERROR = 0x1;
export const H2_FRAME_SIZE_ERROR = 0x6;
export const H2_COMPRESSION_ERROR = 0x9;
export const H2_ENHANCE_YOUR_CALM = 0xb;
/** RFC 3986 reg-name / IP literal with port: what nghttp2 accepts. */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:%[\]@]*$/;

/** A client broke a rule or a limit: the connection ends with GOAWAY(code, message). */
export class Http2ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The last client stream the server was given (GOAWAY's last-stream-id). */
    readonly lastStreamId: number,
  ) {
    super(message);
    this.name = 'Http2ConnectionError';
  }
}

interface PendingBlock {
  streamId: number;
  flags: number;
  priority?: Buffer;
  /** The block's frames as received, passed on unchanged when nothing in it is rewritten. */
  frames: Buffer[];
  fragments: Buffer[];
  bytes: number;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** RFC 7541 §5.1: an integer with an N-bit prefix, the prefix's other bits set to `first`. */
function hpackInt(out: number[], first: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/**
 * A header list as HPACK literals that neither use nor change the dynamic table (RFC 7541
 * §6.2.2, §6.2.3: "without indexing", or "never indexed" where the client said so), strings
 * without Huffman coding. hpack.js decodes each octet to one char (latin1), so this is exact.
 */
export function encodeLiterals(headers: readonly { name: string; value: string; neverIndex: boolean }[]): Buffer {
  let size = 0;
  for (const h of headers) size += h.name.length + h.value.length + 12;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  const head: number[] = [];
  const str = (s: string): void => {
    head.length = 0;
    hpackInt(head, 0x00, 7, s.length);
    for (const b of head) out[off++] = b;
    // Header strings are short: a loop beats Buffer.write's per-call cost.
    for (let i = 0; i < s.length; i++) out[off++] = s.charCodeAt(i);
  };
  for (const h of headers) {
    // 0x10: never indexed; 0x00: without indexing. Index 0: the name follows as a literal.
    out[off++] = h.neverIndex ? 0x10 : 0x00;
    str(h.name);
    str(h.value);
  }
  return out.subarray(0, off);
}

/** A GOAWAY frame; the debug data carries the reason (grpc-go clients log it). */
export function goAwayFrame(lastStreamId: number, code: number, reason: string): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
  payload.writeUInt32BE(code, 4);
  return frame(TYPE_GOAWAY, 0, 0, Buffer.concat([payload, Buffer.from(reason.slice(0, 256))]));
}

export class AuthorityRewrite extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE_LENGTH;
  private pending: PendingBlock | undefined;
  private readonly decoder = hpack.decompressor.create({ table: { maxSize: HPACK_TABLE_BYTES } });
  /** Set by the first rewrite: from then on every block is re-encoded (see the file's comment). */
  private reencoding = false;
  private lastStreamId = 0;
  /** Header blocks whose :authority was replaced (for tests and the log). */
  rewritten = 0;
  /** Header blocks seen whole. */
  headerBlocks = 0;
  /**
   * SETTINGS acknowledgements still to be taken out of the client's stream: one per SETTINGS
   * frame the listener sent before the HTTP/2 server was started (grpc-listener.ts), which the
   * server never sent and so must never see acknowledged.
   */
  settingsAcksToDrop: number;

  constructor(options: { settingsAcksToDrop?: number } = {}) {
    super();
    this.settingsAcksToDrop = options.settingsAcksToDrop ?? 0;
  }
  /** What the current feed() passes on, in order. */
  private out: Buffer[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      const out = this.feed(chunk);
      if (out) this.push(out);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /**
   * Take what the client sent next; returns what the server is to read, as one buffer (a
   * unary call's HEADERS and DATA arrive together and reach nghttp2 in one piece), or
   * undefined when nothing is complete yet. Throws Http2ConnectionError when the client is
   * refused. The listener calls this directly; the Transform interface is the same filter.
   */
  feed(chunk: Buffer): Buffer | undefined {
    this.out = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, this.buf.length);
      this.out.push(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      this.prefaceLeft -= n;
    }
    while (this.prefaceLeft === 0 && this.buf.length >= FRAME_HEADER) {
      const length = this.buf.readUIntBE(0, 3);
      if (length > MAX_FRAME) {
        this.fail(H2_FRAME_SIZE_ERROR, `frame of ${length} bytes is larger than SETTINGS_MAX_FRAME_SIZE ${MAX_FRAME}`);
      }
      if (this.buf.length < FRAME_HEADER + length) break;
      const whole = this.buf.subarray(0, FRAME_HEADER + length);
      this.buf = this.buf.subarray(FRAME_HEADER + length);
      this.onFrame(whole);
    }
    const out = this.out;
    this.out = [];
    if (out.length === 0) return undefined;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  private fail(code: number, message: string): never {
    throw new Http2ConnectionError(code, `crib: ${message}`, this.lastStreamId);
  }

  private onFrame(whole: Buffer): void {
    const type = whole[3]!;
    const flags = whole[4]!;
    const streamId = whole.readUInt32BE(5) & 0x7fffffff;
    let payload = whole.subarray(FRAME_HEADER);
    if (this.pending && (type !== TYPE_CONTINUATION || streamId !== this.pending.streamId)) {
      this.fail(H2_PROTOCOL_ERROR, `frame of type ${type} on stream ${streamId} inside the header block of stream ${this.pending.streamId}`);
    }
    if (type === TYPE_HEADERS) {
      let priority: Buffer | undefined;
      if (flags & FLAG_PADDED) {
        const pad = payload[0] ?? 0;
        if (pad >= payload.length) this.fail(H2_PROTOCOL_ERROR, `HEADERS padding of ${pad} bytes is longer than the frame`);
        payload = payload.subarray(1, payload.length - pad);
      }
      if (flags & FLAG_PRIORITY) {
        if (payload.length < 5) this.fail(H2_FRAME_SIZE_ERROR, 'HEADERS frame too short for its priority fields');
        priority = Buffer.from(payload.subarray(0, 5));
        payload = payload.subarray(5);
      }
      this.pending = { streamId, flags, priority, frames: [], fragments: [], bytes: 0 };
    } else if (type === TYPE_SETTINGS && flags & FLAG_ACK && streamId === 0 && whole.length === FRAME_HEADER && this.settingsAcksToDrop > 0) {
      this.settingsAcksToDrop--;
      return;
    } else if (type !== TYPE_CONTINUATION || !this.pending) {
      // A CONTINUATION with no block open is nghttp2's to refuse, like every other frame.
      this.out.push(whole);
      return;
    }
    const block = this.pending!;
    if (block.frames.length > MAX_CONTINUATIONS) {
      this.fail(H2_ENHANCE_YOUR_CALM, `header block of stream ${block.streamId} is over ${MAX_CONTINUATIONS} CONTINUATION frames`);
    }
    block.bytes += payload.length;
    if (block.bytes > MAX_HEADER_LIST_BYTES) {
      this.fail(H2_ENHANCE_YOUR_CALM, `header block of stream ${block.streamId} is over ${MAX_HEADER_LIST_BYTES} bytes (the header list limit)`);
    }
    block.frames.push(whole);
    block.fragments.push(payload);
    if (flags & FLAG_END_HEADERS) this.flushBlock();
  }

  /**
   * What the client sent that is not passed on yet, as it sent it: a header block still open and
   * a frame not yet whole. For handing the connection to the server without this filter, which is
   * used no more after; only before any rewrite, when what was passed on is what the client sent.
   */
  takeUnparsed(): Buffer {
    if (this.reencoding) throw new Error('a connection whose header blocks were rewritten cannot leave the filter');
    const held = [...(this.pending?.frames ?? []), this.buf];
    this.pending = undefined;
    this.buf = Buffer.alloc(0);
    return Buffer.concat(held);
  }

  private flushBlock(): void {
    const block = this.pending!;
    this.pending = undefined;
    this.headerBlocks++;
    const headers: { name: string; value: string; neverIndex: boolean }[] = [];
    let listBytes = 0;
    try {
      this.decoder.write(block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments));
      this.decoder.execute();
      for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) {
        // Indexed entries decode from one byte into up to a table's worth: bound the result too.
        listBytes += h.name.length + h.value.length + ENTRY_OVERHEAD;
        if (listBytes > MAX_HEADER_LIST_BYTES) break;
        if (h.name === ':authority' && !VALID_AUTHORITY.test(h.value)) {
          headers.push({ ...h, value: 'localhost' });
          this.rewritten++;
          this.reencoding = true;
        } else {
          headers.push(h);
        }
      }
    } catch (err) {
      this.fail(H2_COMPRESSION_ERROR, `header block of stream ${block.streamId} does not decode: ${(err as Error).message}`);
    }
    if (listBytes > MAX_HEADER_LIST_BYTES) {
      this.fail(H2_ENHANCE_YOUR_CALM, `header list of stream ${block.streamId} decodes to over ${MAX_HEADER_LIST_BYTES} bytes (the header list limit)`);
    }
    this.lastStreamId = Math.max(this.lastStreamId, block.streamId);
    if (!this.reencoding) {
      for (const f of block.frames) this.out.push(f);
      return;
    }
    const encoded = encodeLiterals(headers);
    const first = block.priority ? MAX_FRAME - 5 : MAX_FRAME;
    const head = encoded.subarray(0, first);
    const last = encoded.length <= first;
    const flags = (block.flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (last ? FLAG_END_HEADERS : 0);
    this.out.push(frame(TYPE_HEADERS, flags, block.streamId, block.priority ? Buffer.concat([block.priority, head]) : head));
    for (let off = first; off < encoded.length; off += MAX_FRAME) {
      const piece = encoded.subarray(off, off + MAX_FRAME);
      const end = off + MAX_FRAME >= encoded.length;
      this.out.push(frame(TYPE_CONTINUATION, end ? FLAG_END_HEADERS : 0, block.streamId, piece));
    }
  }
}
