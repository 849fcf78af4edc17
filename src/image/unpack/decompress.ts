// Layer compression is detected from the first bytes, not the media type: registries and
// tools disagree on media types, while the magic numbers never lie.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
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

/** fzstd as a stream: zstd layers' fallback when the zstd CLI is absent. */
export function zstdDecompressor(): Transform {
  return new ZstdDecompressStream();
}

const GZIP_OUT_BYTES = 256 * 1024;

/** The parts of Node's zlib handle that GzipInflater drives (lib/zlib.js's own sync path uses them). */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
}

/**
 * gzip inflated on the calling thread, into one output buffer it reuses. Node's Gunzip stream
 * inflates on libuv's thread pool: every chunk is a hand-off there and back, into a fresh 256 KiB
 * buffer each time (its page faults a visible share of a pull's CPU), and the pool's threads run
 * at the normal priority the unpack threads are kept below. An unpack thread has nothing else to
 * do meanwhile, so it inflates itself, with the zlib Node ships (multi-member gzip and all),
 * through the handle calls Node's own synchronous zlib functions make. `onOutput` must not keep
 * the buffer it is given: the next call overwrites it.
 */
export class GzipInflater {
  private readonly gunzip = createGunzip();
  private readonly handle: ZlibHandle;
  /** [output bytes left, input bytes left] after each writeSync. */
  private readonly state: Uint32Array;
  private readonly out = Buffer.allocUnsafe(GZIP_OUT_BYTES);

  constructor(private readonly onOutput: (chunk: Buffer) => void) {
    const internals = this.gunzip as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
    if (typeof internals._handle?.writeSync !== 'function' || !(internals._writeState instanceof Uint32Array)) {
      throw new Error(`this Node (${process.version}) has no synchronous zlib handle, which unpacking gzip layers needs`);
    }
    this.handle = internals._handle;
    this.state = internals._writeState;
    // A zlib error also destroys the stream, which emits it later: it is thrown here instead.
    this.gunzip.on('error', () => undefined);
  }

  /** Inflate `input`, handing the output on as the buffer fills. Input past the end of the gzip data is ignored, as Node's Gunzip does. */
  push(input: Uint8Array): void {
    this.run(zlibConstants.Z_NO_FLUSH, input);
  }

  /** No more input: throws (Z_BUF_ERROR, "unexpected end of file") when the gzip data was cut short. */
  finish(): void {
    this.run(zlibConstants.Z_FINISH, EMPTY);
  }

  close(): void {
    this.gunzip.destroy();
  }

  private run(flush: number, input: Uint8Array): void {
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      this.handle.writeSync(flush, input, inOff, inLen, this.out, 0, this.out.length);
      if (this.gunzip.errored) throw this.gunzip.errored;
      const outLeft = this.state[0]!;
      const inLeft = this.state[1]!;
      const have = this.out.length - outLeft;
      if (have > 0) this.onOutput(this.out.subarray(0, have));
      inOff += inLen - inLeft;
      inLen = inLeft;
      // Output room left over means zlib wanted no more of this input.
      if (outLeft !== 0) return;
    }
  }
}

const EMPTY = new Uint8Array(0);

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
