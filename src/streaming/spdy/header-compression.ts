// The two zlib contexts of a SPDY connection. SPDY/3 compresses every header block of one
// direction as a continuation of the same zlib stream (primed with the SPDY dictionary) and ends
// each block with a sync flush, so one context per direction must live as long as the
// connection — exactly what Go's spdy Framer does. node:zlib offers stateful contexts only as
// streams, so each block is a write + Z_SYNC_FLUSH, and blocks are processed strictly in order.
import zlib from 'node:zlib';
import { SPDY3_HEADER_DICTIONARY } from './dictionary.js';
import { SpdyLimitError, SpdyProtocolError } from './spdy-errors.js';

type ZlibEngine = zlib.Deflate | zlib.Inflate;

class ZlibContext {
  private chain: Promise<unknown> = Promise.resolve();
  private collected: Buffer[] | null = null;
  private collectedBytes = 0;
  private limit = Infinity;
  private failure: Error | undefined;
  private rejectActive: ((e: Error) => void) | undefined;

  constructor(
    private readonly engine: ZlibEngine,
    private readonly describe: (e: Error) => Error,
  ) {
    engine.on('data', (chunk: Buffer) => {
      if (!this.collected) return;
      this.collected.push(chunk);
      this.collectedBytes += chunk.length;
      if (this.collectedBytes > this.limit) {
        this.fail(new SpdyLimitError(`SPDY header block inflates past the limit of ${this.limit} bytes`));
      }
    });
    engine.on('error', (e: Error) => this.fail(this.describe(e)));
  }

  /** Runs one block through the context; blocks are serialized so outputs never interleave. */
  run(input: Buffer, limit: number): Promise<Buffer> {
    const result = this.chain.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.failure) return reject(this.failure);
          this.collected = [];
          this.collectedBytes = 0;
          this.limit = limit;
          this.rejectActive = reject;
          this.engine.write(input);
          this.engine.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            // A 'data' event can trail the flush callback by a tick when the readable side was
            // buffering; setImmediate runs after every pending tick, so all output is in.
            setImmediate(() => {
              if (this.failure) return reject(this.failure);
              const out = Buffer.concat(this.collected ?? [], this.collectedBytes);
              this.collected = null;
              this.rejectActive = undefined;
              resolve(out);
            });
          });
        }),
    );
    this.chain = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.fail(new SpdyProtocolError('SPDY header compression context closed'));
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.collected = null;
    this.engine.destroy();
    this.rejectActive?.(e);
    this.rejectActive = undefined;
  }
}

/** Compresses our outgoing header blocks (one per SYN_STREAM / SYN_REPLY / HEADERS). */
export class HeaderCompressor {
  private readonly ctx = new ZlibContext(
    zlib.createDeflate({ dictionary: SPDY3_HEADER_DICTIONARY, level: zlib.constants.Z_BEST_COMPRESSION }),
    (e) => new SpdyProtocolError(`SPDY header compression failed: ${e.message}`),
  );

  compress(block: Buffer): Promise<Buffer> {
    return this.ctx.run(block, Infinity);
  }

  close(): void {
    this.ctx.close();
  }
}

/** Inflates the peer's header blocks; maxBlockSize caps each decompressed block. */
export class HeaderDecompressor {
  private readonly ctx = new ZlibContext(
    zlib.createInflate({ dictionary: SPDY3_HEADER_DICTIONARY }),
    (e) => new SpdyProtocolError(`SPDY header block does not decompress: ${e.message}`),
  );

  constructor(private readonly maxBlockSize: number) {}

  decompress(block: Buffer): Promise<Buffer> {
    return this.ctx.run(block, this.maxBlockSize);
  }

  close(): void {
    this.ctx.close();
  }
}
