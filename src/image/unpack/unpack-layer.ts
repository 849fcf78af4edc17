// Layer blob → directory. One pass over the blob: decompress, hash the tar (its sha256 is the
// layer's diffID, which the caller checks against the image config's rootfs.diff_ids) and
// extract, all streaming.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, CribError } from '../../errors.js';
import { digestHex } from '../../digest/digest.js';
import { formatLimit, limitExceeded, type ByteBudget } from '../limits.js';
import { syncfs } from '../../sys/libc.js';
import {
  decompressor, detectCompression, spawnZstd, zstdBinary, type Compression, type ZstdProcess,
} from './decompress.js';
import { LayerWriter } from './layer-writer.js';
import { Sha256Worker } from './sha256-worker.js';
import { TarReader } from './tar-reader.js';

/** zstd blobs from this size up hash on a worker (its ~20 ms start-up is worth it). */
const WORKER_HASH_MIN_BYTES = 4 << 20;

export interface UnpackOptions {
  signal?: AbortSignal;
  /** Flush the filesystem once at the end (one syncfs instead of an fsync per file). */
  sync?: boolean;
  /**
   * The blob's digest as verified by the content store. For an uncompressed layer it is the
   * diffID, and the tar is not hashed again.
   */
  blobDigest?: string;
  /** The layer as messages name it (default: the blob's path). */
  what?: string;
  /** Most uncompressed tar bytes accepted (image.max_layer_size). */
  maxBytes?: number;
  /** Most tar entries accepted (image.max_layer_entries). */
  maxEntries?: number;
  /** The image's running total of uncompressed bytes (image.max_image_size). */
  budget?: ByteBudget;
  /** Bound on the writer's directory bookkeeping (default: LayerWriter's); tests lower it. */
  maxBookkeepingBytes?: number;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of uncompressed tar. */
  size: number;
  compression: Compression;
  entries: number;
  /** Bytes of regular-file content written. */
  fileBytes: number;
  whiteouts: number;
}

export async function unpackLayer(blobPath: string, targetDir: string, opts: UnpackOptions = {}):
  Promise<UnpackResult> {
  const compression = await detectCompression(blobPath);
  const blobSize = (await stat(blobPath)).size;
  await mkdir(targetDir, { recursive: true });
  const what = opts.what ?? `layer ${blobPath}`;
  const writer = new LayerWriter(targetDir, { what, maxBookkeepingBytes: opts.maxBookkeepingBytes });
  const reader = new TarReader(writer, { maxEntries: opts.maxEntries, what });
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const budget = opts.budget;
  const zstdBin = compression === 'zstd' ? zstdBinary() : undefined;

  // An uncompressed layer's diffID is its blob digest, already verified by the content store:
  // skipping a second sha256 pass saves ~0.7 ms of main-thread CPU per MB.
  if (compression === 'none' && opts.blobDigest !== undefined) digestHex(opts.blobDigest);
  const trusted = compression === 'none' && opts.blobDigest !== undefined;
  const offThread = !trusted && zstdBin !== undefined && blobSize >= WORKER_HASH_MIN_BYTES;
  const hash = trusted || offThread ? undefined : createHash('sha256');
  let hashWorker: Sha256Worker | undefined;

  let size = 0;
  let inputEnded = false;
  // Counted before the bytes reach the tar parser: a decompression bomb stops at the limit, with
  // only what fits under it written, and the caller discards the directory.
  const consume = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > maxBytes) throw limitExceeded('maxLayerBytes', maxBytes, `${what} unpacks to more than ${formatLimit('maxLayerBytes', maxBytes)}`);
    budget?.add(chunk.length);
    hash?.update(chunk);
    reader.push(chunk);
    hashWorker?.update(chunk); // last: the worker may take the chunk's memory
  };
  const finish = (): void => {
    inputEnded = true;
    reader.end();
    writer.finish();
  };
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      try {
        consume(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    final(cb) {
      try {
        finish();
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });

  let zstd: ZstdProcess | undefined;
  let diffId: string;
  try {
    if (offThread) hashWorker = new Sha256Worker();
    const pipeOpts = opts.signal ? { signal: opts.signal } : {};
    if (compression === 'none') {
      await readInto(blobPath, consume, opts.signal);
      finish();
    } else if (zstdBin) {
      zstd = spawnZstd(zstdBin, blobPath);
      await pipeline(zstd.stdout, sink, pipeOpts);
      await zstd.done;
    } else {
      await pipeline(createReadStream(blobPath, { highWaterMark: 1 << 20 }), decompressor(compression)!, sink,
        pipeOpts);
    }
    diffId = hashWorker ? await hashWorker.digest() : hash ? `sha256:${hash.digest('hex')}` : opts.blobDigest!;
  } catch (err) {
    writer.abort();
    if (zstd) {
      // Once its output has ended zstd has exited on its own, and its verdict explains a
      // truncated tar better than the tar parser can; otherwise we stopped reading and kill it.
      if (inputEnded) await zstd.done;
      zstd.kill();
      await zstd.done.catch(() => undefined);
    }
    if (err instanceof CribError || (err instanceof Error && err.name === 'AbortError')) throw err;
    const code = (err as { code?: string }).code;
    // zlib / fzstd failures mean the blob is not a valid layer of its kind.
    if (code?.startsWith('Z_') || (compression === 'zstd' && !(code && /^E[A-Z]+$/.test(code)))) {
      throw new InvalidArgumentError(`layer ${blobPath} is not a valid ${compression} stream: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    hashWorker?.close();
  }

  if (opts.sync) {
    const fh = await open(targetDir, 'r');
    try {
      syncfs(fh.fd);
    } finally {
      await fh.close();
    }
  }
  return {
    diffId,
    size,
    compression,
    ...writer.stats,
  };
}

// 256 KiB: a chunk of tiny files is processed synchronously, so this bounds each event-loop pause
// (~500 entries at most) while still amortising the read round trip.
const READ_CHUNK = 256 << 10;

/**
 * Feed a file to `consume` through two reused buffers, the next read in flight while the
 * current chunk is processed. `consume` must not keep the chunk. For plain tars this saves a
 * fresh 1 MiB allocation (and its page faults and GC) per chunk, a visible share of the CPU.
 */
async function readInto(path: string, consume: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  const fh = await open(path, 'r');
  const bufs = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)] as const;
  let pos = 0;
  let i = 0;
  let next = fh.read(bufs[0], 0, READ_CHUNK, 0);
  try {
    for (;;) {
      const { bytesRead } = await next;
      if (bytesRead === 0) return;
      signal?.throwIfAborted();
      const cur = bufs[i]!;
      pos += bytesRead;
      i ^= 1;
      next = fh.read(bufs[i]!, 0, READ_CHUNK, pos);
      consume(cur.subarray(0, bytesRead));
    }
  } finally {
    await next.catch(() => undefined);
    await fh.close();
  }
}
