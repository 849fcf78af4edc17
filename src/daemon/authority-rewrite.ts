// kubelet, crictl and critest built before Kubernetes 1.31 send the unix socket's path
// ("/run/crib/crib.sock") as the HTTP/2 :authority. Node's HTTP/2 layer (nghttp2) rejects that
// as a malformed header and resets every stream, so those clients could not talk to crib at all.
// This transform sits between the socket and the gRPC server: it decodes each header block the
// client sends, replaces an :authority that is not a valid host with "localhost" (what newer
// clients send), and re-encodes it. Because HPACK is stateful, every client header block is
// decoded and re-encoded with our own encoder state; all other frames pass through untouched,
// and the server-to-client direction is not touched at all.
import { Transform, type TransformCallback } from 'node:stream';
import hpack from 'hpack.js';

const PREFACE_LENGTH = 24;
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** The default SETTINGS_MAX_FRAME_SIZE; gRPC servers do not lower it. */
const MAX_FRAME = 16384;
/** RFC 3986 reg-name / IP literal with port: what nghttp2 accepts. */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:%[\]@]*$/;

interface PendingBlock {
  streamId: number;
  flags: number;
  priority?: Buffer;
  fragments: Buffer[];
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export class AuthorityRewrite extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE_LENGTH;
  private pending: PendingBlock | undefined;
  private readonly decoder = hpack.decompressor.create({ table: { size: 4096 } });
  private readonly encoder = hpack.compressor.create({ table: { size: 4096 } });
  /** Header blocks whose :authority was replaced (for tests and the log). */
  rewritten = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      if (this.prefaceLeft > 0) {
        const n = Math.min(this.prefaceLeft, this.buf.length);
        this.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.prefaceLeft -= n;
      }
      while (this.prefaceLeft === 0 && this.buf.length >= FRAME_HEADER) {
        const length = this.buf.readUIntBE(0, 3);
        if (this.buf.length < FRAME_HEADER + length) break;
        const whole = this.buf.subarray(0, FRAME_HEADER + length);
        this.buf = this.buf.subarray(FRAME_HEADER + length);
        this.onFrame(whole);
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private onFrame(whole: Buffer): void {
    const type = whole[3]!;
    const flags = whole[4]!;
    const streamId = whole.readUInt32BE(5) & 0x7fffffff;
    let payload = whole.subarray(FRAME_HEADER);
    if (type === TYPE_HEADERS) {
      let priority: Buffer | undefined;
      if (flags & FLAG_PADDED) {
        const pad = payload[0]!;
        payload = payload.subarray(1, payload.length - pad);
      }
      if (flags & FLAG_PRIORITY) {
        priority = Buffer.from(payload.subarray(0, 5));
        payload = payload.subarray(5);
      }
      this.pending = { streamId, flags, priority, fragments: [Buffer.from(payload)] };
    } else if (type === TYPE_CONTINUATION && this.pending) {
      this.pending.fragments.push(Buffer.from(payload));
    } else {
      this.push(whole);
      return;
    }
    if (flags & FLAG_END_HEADERS) this.flushBlock();
  }

  private flushBlock(): void {
    const block = this.pending!;
    this.pending = undefined;
    this.decoder.write(Buffer.concat(block.fragments));
    this.decoder.execute();
    const headers: { name: string; value: string; neverIndex: boolean }[] = [];
    for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) {
      if (h.name === ':authority' && !VALID_AUTHORITY.test(h.value)) {
        headers.push({ ...h, value: 'localhost' });
        this.rewritten++;
      } else {
        headers.push(h);
      }
    }
    this.encoder.write(headers);
    const parts: Buffer[] = [];
    for (let b = this.encoder.read(); b !== null; b = this.encoder.read()) parts.push(b);
    const encoded = Buffer.concat(parts);
    const first = block.priority ? MAX_FRAME - 5 : MAX_FRAME;
    const head = encoded.subarray(0, first);
    const last = encoded.length <= first;
    const flags = (block.flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (last ? FLAG_END_HEADERS : 0);
    this.push(frame(TYPE_HEADERS, flags, block.streamId, block.priority ? Buffer.concat([block.priority, head]) : head));
    for (let off = first; off < encoded.length; off += MAX_FRAME) {
      const piece = encoded.subarray(off, off + MAX_FRAME);
      const end = off + MAX_FRAME >= encoded.length;
      this.push(frame(TYPE_CONTINUATION, end ? FLAG_END_HEADERS : 0, block.streamId, piece));
    }
  }
}
