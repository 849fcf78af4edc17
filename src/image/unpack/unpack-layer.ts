// Layer blob → directory. One pass over the blob: decompress, hash the tar (its sha256 is the
// layer's diffID, which the caller checks against the image config's rootfs.diff_ids) and
// extract, all streaming.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, CribError } from '../../errors.js';
import { syncfs } from '../../sys/libc.js';
import {
  decompressor, detectCompression, spawnZstd, zstdBinary, type Compression, type ZstdProcess,
} from './decompress.js';
import { LayerWriter } from './layer-writer.js';
import { TarReader } from './tar-reader.js';

export interface UnpackOptions {
  signal?: AbortSignal;
  /** Flush the filesystem once at the end (one syncfs instead of an fsync per file). */
  sync?: boolean;
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
  await mkdir(targetDir, { recursive: true });
  const writer = new LayerWriter(targetDir);
  const reader = new TarReader(writer);
  const hash = createHash('sha256');
  let size = 0;
  let inputEnded = false;

  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      try {
        hash.update(chunk);
        size += chunk.length;
        reader.push(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    final(cb) {
      inputEnded = true;
      try {
        reader.end();
        writer.finish();
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });

  let stages: (Readable | Writable)[];
  let zstd: ZstdProcess | undefined;
  const zstdBin = compression === 'zstd' ? zstdBinary() : undefined;
  if (zstdBin) {
    zstd = spawnZstd(zstdBin, blobPath);
    stages = [zstd.stdout, sink];
  } else {
    const source = createReadStream(blobPath, { highWaterMark: 1 << 20 });
    const inflate = decompressor(compression);
    stages = inflate ? [source, inflate, sink] : [source, sink];
  }
  try {
    await pipeline(stages as unknown as [Readable, Writable], opts.signal ? { signal: opts.signal } : {});
    await zstd?.done;
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
    if (code?.startsWith('Z_') || compression === 'zstd' && !(code && /^E[A-Z]+$/.test(code))) {
      throw new InvalidArgumentError(`layer ${blobPath} is not a valid ${compression} stream: ${(err as Error).message}`, { cause: err });
    }
    throw err;
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
    diffId: `sha256:${hash.digest('hex')}`,
    size,
    compression,
    ...writer.stats,
  };
}
