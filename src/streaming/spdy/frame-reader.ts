// Cuts a byte stream into SPDY frames. Bytes arrive in arbitrary socket chunks; frames are
// returned whole, with the limits checked from the 8-byte header before the payload is buffered
// so an oversized frame is refused without ever being held in memory.
import {
  FRAME_HEADER_LENGTH,
  FLAG_FIN,
  decodeControlFrame,
  type SpdyFrame,
} from './frames.js';
import { SpdyLimitError, SpdyProtocolError } from './spdy-errors.js';

export interface FrameLimits {
  /** Largest accepted data frame payload (the protocol maximum is 2^24-1). */
  maxDataFrameLength: number;
  /** Largest accepted control frame payload; header blocks travel in control frames. */
  maxControlFrameLength: number;
}

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly limits: FrameLimits) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws on invalid input. */
  next(): SpdyFrame | undefined {
    for (;;) {
      if (this.buffered < FRAME_HEADER_LENGTH) return undefined;
      const head = this.peek(FRAME_HEADER_LENGTH);
      const word0 = head.readUInt32BE(0);
      const word1 = head.readUInt32BE(4);
      const flags = word1 >>> 24;
      const length = word1 & 0xffffff;
      const control = (word0 & 0x80000000) !== 0;
      if (control) {
        if (length > this.limits.maxControlFrameLength) {
          throw new SpdyLimitError(
            `SPDY control frame of ${length} bytes exceeds the limit of ${this.limits.maxControlFrameLength}`);
        }
      } else {
        if ((word0 & 0x7fffffff) === 0) throw new SpdyProtocolError('malformed SPDY data frame: stream id 0');
        if ((flags & ~FLAG_FIN) !== 0) {
          throw new SpdyProtocolError(`malformed SPDY data frame: unknown flags 0x${flags.toString(16)}`);
        }
        if (length > this.limits.maxDataFrameLength) {
          throw new SpdyLimitError(
            `SPDY data frame of ${length} bytes exceeds the limit of ${this.limits.maxDataFrameLength}`);
        }
      }
      if (this.buffered < FRAME_HEADER_LENGTH + length) return undefined;
      this.consume(FRAME_HEADER_LENGTH);
      const payload = this.consume(length);
      if (!control) return { type: 'data', streamId: word0 & 0x7fffffff, flags, data: payload };
      const frame = decodeControlFrame((word0 >>> 16) & 0x7fff, word0 & 0xffff, flags, payload);
      if (frame) return frame;
      // Unknown control frame types are skipped, as the spec requires.
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    this.coalesce(n);
    return this.chunks[0]!.subarray(0, n);
  }

  private consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length < n) this.coalesce(n);
    const head = this.chunks[0]!;
    let out: Buffer;
    if (head.length === n) {
      out = head;
      this.chunks.shift();
    } else {
      out = head.subarray(0, n);
      this.chunks[0] = head.subarray(n);
    }
    this.buffered -= n;
    return out;
  }

  /** Merges leading chunks until the first holds at least n bytes (n <= buffered). */
  private coalesce(n: number): void {
    let total = 0;
    let count = 0;
    while (total < n) total += this.chunks[count++]!.length;
    const merged = Buffer.concat(this.chunks.slice(0, count), total);
    this.chunks.splice(0, count, merged);
  }
}
