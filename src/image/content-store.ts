// Content-addressed blob store: <root>/content/sha256/<hex>. Bytes are counted as they stream in
// and hashed by the sink that writes them (here, or a layer's unpack thread), and only a verified
// blob is renamed into place, so a blob that exists is always the blob its name says. Temp files
// live in <root>/content/ingest on the same filesystem so the final rename is atomic.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { DataLossError, InvalidArgumentError, NotFoundError, errnoCode, fsError } from '../errors.js';
import { digestHex } from '../digest/digest.js';
import { log } from '../log.js';
import { fsyncDir, unlinkIfExists } from '../store/atomic-file.js';
import { diskUsage, type DiskUsage } from '../sys/disk-usage.js';
import { eachChunk } from '../sys/each-chunk.js';

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
   * Where a fetched blob's bytes go: a sink writing the temp file `path` (a layer's unpack
   * thread, which unpacks the bytes as they arrive and writes and hashes them off the event
   * loop). Called only when this call fetches the blob: not when the blob is present or another
   * call's fetch is joined. Without it the bytes are written and hashed here.
   */
  sinkAt?(path: string): BlobSink;
}

/** Writes a blob being fetched into its temp file and hashes it. */
export interface BlobSink {
  /**
   * The next bytes; `chunk` is the sink's from then on (it may move to another thread). A
   * returned promise holds the download back until there is room; it rejects once the sink has
   * failed.
   */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Every byte was written: resolves to their sha256 digest once the file holds them, synced and closed. */
  end(): Promise<string>;
  /** The fetch failed: resolves once nothing writes the file any more (it is then removed). */
  stop(err: Error): Promise<void>;
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
   * Remove a blob; false when it was not there. Only garbage is removed (image-service.ts), and
   * the removal reaches the disk in its own time: should a crash bring a blob back, the next
   * start-up's collection removes it again, and a blob is named by its digest, so a returned one
   * is still right.
   */
  delete(digest: string): Promise<boolean> {
    return unlinkIfExists(this.path(digest));
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
    return diskUsage([this.blobDir, this.ingestDir]);
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

  /**
   * Stream the blob into a temp file through its sink, counting its bytes as they arrive (a blob
   * outgrowing its size fails at once), check the digest the sink reports, and rename the synced
   * file into place.
   */
  private async fetch(desc: BlobDescriptor, hex: string, final: string,
    openStream: () => Promise<Readable>, opts: IngestOptions): Promise<string> {
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    const tmpName = `${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`;
    const tmp = join(this.ingestDir, tmpName);
    this.activeTemps.add(tmpName);
    let source: Readable | undefined;
    let sink: BlobSink | undefined;
    try {
      opts.signal?.throwIfAborted();
      source = await openStream();
      if (opts.signal) addAbortSignal(opts.signal, source);
      sink = opts.sinkAt?.(tmp) ?? await FileSink.create(tmp);
      let bytes = 0;
      const into = sink;
      await eachChunk(source, (chunk) => {
        bytes += chunk.length;
        if (bytes > desc.size) throw new DataLossError(`blob ${desc.digest}: expected ${desc.size} bytes, got more than that`);
        opts.onProgress?.(bytes);
        return into.write(chunk);
      });
      if (bytes !== desc.size) throw new DataLossError(`blob ${desc.digest}: expected ${desc.size} bytes, got ${bytes}`);
      const got = await sink.end();
      if (got !== desc.digest) throw new DataLossError(`blob ${desc.digest}: content has digest ${got}, expected ${desc.digest}`);
      await rename(tmp, final);
      await fsyncDir(this.blobDir);
      return final;
    } catch (err) {
      source?.destroy();
      await sink?.stop(err instanceof Error ? err : new Error(String(err)));
      await unlinkIfExists(tmp);
      throw err;
    } finally {
      this.activeTemps.delete(tmpName);
    }
  }
}

/** A blob written and hashed on this thread (config blobs, manifests: a few KiB). */
class FileSink implements BlobSink {
  private readonly hash = createHash('sha256');
  private closed = false;

  private constructor(private readonly fh: FileHandle, private readonly path: string) {}

  static async create(path: string): Promise<FileSink> {
    try {
      return new FileSink(await open(path, 'wx', 0o644), path);
    } catch (err) {
      throw fsError(err, path, 'create');
    }
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    try {
      for (let off = 0; off < chunk.length;) off += (await this.fh.write(chunk, off)).bytesWritten;
    } catch (err) {
      throw fsError(err, this.path, 'write');
    }
  }

  async end(): Promise<string> {
    try {
      await this.fh.sync();
    } catch (err) {
      throw fsError(err, this.path, 'fsync');
    }
    this.closed = true;
    try {
      await this.fh.close();
    } catch (err) {
      throw fsError(err, this.path, 'close');
    }
    return `sha256:${this.hash.digest('hex')}`;
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
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
