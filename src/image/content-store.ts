// Content-addressed blob store: <root>/content/sha256/<hex>. Bytes are verified while they
// stream in (digest and size) and only a verified blob is renamed into place, so a blob that
// exists is always the blob its name says. Temp files live in <root>/content/ingest on the same
// filesystem so the final rename is atomic.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DataLossError, InvalidArgumentError, NotFoundError, errnoCode, fsError } from '../errors.js';
import { digestHex } from '../digest/digest.js';
import { log } from '../log.js';
import { fsyncDir, unlinkIfExists } from '../store/atomic-file.js';
import { diskUsage, type DiskUsage } from '../sys/disk-usage.js';

export interface BlobDescriptor {
  digest: string;
  size: number;
  mediaType?: string;
}

export interface IngestOptions {
  signal?: AbortSignal;
  /** Called with the running byte count as data arrives. */
  onProgress?(bytes: number): void;
  /**
   * Also give the bytes to `tee` as they arrive (a layer unpacking while it downloads), only when
   * this call fetches the blob: none reach it when the blob is present or another call's fetch
   * is joined. A pending write() holds the download back (backpressure) and a rejected one fails
   * it; end() comes only after the whole blob matched its size and digest.
   */
  tee?: BlobTee;
}

export interface BlobTee {
  write(chunk: Buffer): Promise<void> | undefined;
  end(): void;
}

export class ContentStore {
  readonly dir: string;
  private readonly blobDir: string;
  private readonly ingestDir: string;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(root: string) {
    this.dir = join(root, 'content');
    this.blobDir = join(this.dir, 'sha256');
    this.ingestDir = join(this.dir, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true, mode: 0o700 });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  /** Where the blob for `digest` lives (whether or not it is present). */
  path(digest: string): string {
    return join(this.blobDir, digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async readBytes(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`blob ${digest} is not in the content store`);
      throw err;
    }
  }

  /**
   * Remove a blob; false when it was not there. `sync: false` leaves the removal to reach the
   * disk in its own time: for garbage, which the next start-up's collection removes again should
   * a crash bring it back (a blob is named by its digest, so a returned one is still right).
   */
  async delete(digest: string, opts: { sync?: boolean } = {}): Promise<boolean> {
    try {
      await rm(this.path(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
    if (opts.sync !== false) await fsyncDir(this.blobDir);
    return true;
  }

  /** Digests of every blob present. */
  async list(): Promise<string[]> {
    const names = await readdir(this.blobDir).catch((err) => {
      if (errnoCode(err) === 'ENOENT') return [] as string[];
      throw err;
    });
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Remove temp files left by ingests a crash interrupted. Call once at start-up. */
  async cleanupIngest(): Promise<number> {
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    let removed = 0;
    for (const name of await readdir(this.ingestDir)) {
      if (this.activeTemps.has(name)) continue;
      await rm(join(this.ingestDir, name), { recursive: true, force: true });
      removed += 1;
    }
    if (removed > 0) log.info({ removed }, 'removed interrupted content ingests');
    return removed;
  }

  async usage(): Promise<DiskUsage> {
    return diskUsage(this.blobDir, this.ingestDir);
  }

  /**
   * Make the blob `desc` present, fetching it with `open()` if needed; resolves to its path.
   * Concurrent calls for one digest share a single fetch.
   */
  async ingest(desc: BlobDescriptor, openStream: () => Promise<Readable>, opts: IngestOptions = {}):
    Promise<string> {
    const hex = digestHex(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
      throw new InvalidArgumentError(`blob ${desc.digest}: size ${desc.size} is not a non-negative integer`);
    }
    const final = join(this.blobDir, hex);
    for (;;) {
      const shared = this.inflight.get(hex);
      if (!shared) break;
      try {
        return await abortable(shared, opts.signal);
      } catch (err) {
        // The fetch we joined was cancelled by its owner's signal, not ours: fetch it ourselves.
        if (opts.signal?.aborted || !isAbort(err)) throw err;
      }
    }
    // Registered before the first await, so the first caller owns the fetch and every later one
    // joins it, whatever order their disk checks finish in.
    const work = (async () => ((await this.has(desc.digest)) ? final : this.fetch(desc, hex, final, openStream, opts)))()
      .finally(() => this.inflight.delete(hex));
    this.inflight.set(hex, work);
    return work;
  }

  private readonly activeTemps = new Set<string>();

  private async fetch(desc: BlobDescriptor, hex: string, final: string,
    openStream: () => Promise<Readable>, opts: IngestOptions): Promise<string> {
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    const tmpName = `${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`;
    const tmp = join(this.ingestDir, tmpName);
    this.activeTemps.add(tmpName);
    try {
      opts.signal?.throwIfAborted();
      const source = await openStream();
      const verifier = new DigestVerifier(desc, opts.onProgress, opts.tee);
      const sink = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
      // A write to the stream's fd names no file: a full disk is reported with the temp's path.
      let sinkError: unknown;
      sink.once('error', (err) => (sinkError = err));
      await pipeline(source, verifier, sink, opts.signal ? { signal: opts.signal } : {}).catch((err: unknown) => {
        throw err === sinkError ? fsError(err, tmp, 'write') : err;
      });
      verifier.check();
      opts.tee?.end();
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      await fsyncDir(this.blobDir);
      return final;
    } catch (err) {
      await unlinkIfExists(tmp);
      throw err;
    } finally {
      this.activeTemps.delete(tmpName);
    }
  }
}

/** Pass-through that hashes and counts, failing as soon as the stream outgrows its size. */
class DigestVerifier extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(private readonly desc: BlobDescriptor, private readonly onProgress?: (n: number) => void,
    private readonly tee?: BlobTee) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.desc.size) {
      cb(new DataLossError(`blob ${this.desc.digest}: expected ${this.desc.size} bytes, got more than that`));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(this.bytes);
    let teed: Promise<void> | undefined;
    try {
      teed = this.tee?.write(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (teed) teed.then(() => cb(null, chunk), (err: unknown) => cb(err as Error));
    else cb(null, chunk);
  }

  /** Throws DataLossError unless the whole stream matched both size and digest. */
  check(): void {
    if (this.bytes !== this.desc.size) {
      throw new DataLossError(`blob ${this.desc.digest}: expected ${this.desc.size} bytes, got ${this.bytes}`);
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.desc.digest) {
      throw new DataLossError(`blob ${this.desc.digest}: content has digest ${got}, expected ${this.desc.digest}`);
    }
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** `p`, or an AbortError as soon as `signal` fires (the shared work itself continues). */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
