// Layer compression is detected from the first bytes, not the media type: registries and
// tools disagree on media types, while the magic numbers never lie.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Decompress } from 'fzstd';
import { InvalidArgumentError } from '../../errors.js';
import { lazyModule } from '../../sys/lazy-module.js';

/** Loaded on first use (sys/lazy-module.ts). */
const fzstd = lazyModule<typeof import('fzstd')>('fzstd');

export type Compression = 'gzip' | 'zstd' | 'none';

export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return compressionOf(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** A stream that inflates `kind`, or undefined for an uncompressed tar. */
export function decompressor(kind: Compression): Transform | undefined {
  switch (kind) {
    case 'gzip':
      // Larger output chunks mean fewer hand-offs to the tar writer per MB.
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
      return new ZstdDecompressStream();
    case 'none':
      return undefined;
  }
}

/** fzstd's push-based streaming decoder as a Transform (Node 20's zlib has no zstd). */
class ZstdDecompressStream extends Transform {
  private readonly z: Decompress = new (fzstd().Decompress)((data) => {
    // fzstd may reuse its window buffer; copy out what we hand downstream.
    if (data.length > 0) this.push(Buffer.from(data));
  });

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.z.push(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.z.push(new Uint8Array(0), true);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

let zstdPath: string | null | undefined;

/** The zstd CLI on PATH, if any (looked up once). */
export function zstdBinary(): string | undefined {
  if (zstdPath === undefined) {
    zstdPath = null;
    for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
      try {
        accessSync(join(dir, 'zstd'), fsConstants.X_OK);
        zstdPath = join(dir, 'zstd');
        break;
      } catch {
        // not in this PATH entry
      }
    }
  }
  return zstdPath ?? undefined;
}

export interface ZstdProcess {
  stdout: Readable;
  /** Where to write the compressed bytes when no file was given (a layer being downloaded). */
  stdin?: Writable;
  /** Resolves when zstd exits 0; rejects with InvalidArgumentError when it reports bad input. */
  done: Promise<void>;
  kill(): void;
}

/**
 * Decompress a zstd file (or, with `file` undefined, what is written to stdin) with the native
 * zstd CLI. fzstd (pure JS) manages ~70 MB/s on this class of machine, the CLI several hundred
 * MB/s, and it runs on the other core while we write files; fzstd remains the fallback when the
 * CLI is absent. `what` names the layer in messages (default: the file).
 */
export function spawnZstd(bin: string, file: string | undefined, what = `layer ${file ?? '(stdin)'}`): ZstdProcess {
  const args = file === undefined ? ['-d', '-c', '-q'] : ['-d', '-c', '-q', '--', file];
  const child = spawn(bin, args, { stdio: [file === undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const stdout = child.stdout!;
  const stderrStream = child.stderr!;
  let stderr = '';
  stderrStream.setEncoding('utf8');
  stderrStream.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new InvalidArgumentError(
        `${what} is not a valid zstd stream: zstd exited ${code ?? signal}: ${stderr.trim()}`));
    });
  });
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection
  return {
    stdout,
    ...(child.stdin ? { stdin: child.stdin } : {}),
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
