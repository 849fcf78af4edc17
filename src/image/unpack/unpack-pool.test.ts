// The unpack pool as an unprivileged user sees it (unit tier: no chown to other users, no device
// nodes but overlay whiteouts, no trusted.* xattrs; root-test/image/unpack covers those).
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InternalError, InvalidArgumentError, ResourceExhaustedError } from '../../errors.js';
import { ByteBudget } from '../limits.js';
import { sha256, tarFromEntries, type TarEntry } from '../../../test-support/image-builder.js';
import { zstdLayer } from '../../../test-support/tar-fixtures.js';
import { freeReadBuffers, openReader, takeReadBuffer } from '../../sys/read-buffers.js';
import { markSoleView } from '../../sys/sole-view.js';
import { UnpackPool, type LayerUnpack } from './unpack-pool.js';

const uid = process.getuid!();
const gid = process.getgid!();
const mine = { uid, gid };

let work: string;
let n = 0;
const pool = new UnpackPool(2, 300);
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), `crib-unpack-pool-${process.pid}-`));
});
afterAll(async () => {
  await pool.close();
  rmSync(work, { recursive: true, force: true });
});
const fresh = (): string => join(work, `d${n++}`);
/** A download's blob file, as the content store names one: a fresh path. */
const download = (): { download: string } => ({ download: join(work, `blob-${n++}`) });

/** Feed `blob` to a download's job in chunks of `size`, as the content store would; the digest. */
async function feed(job: LayerUnpack, blob: Buffer, size = 4096): Promise<string> {
  for (let off = 0; off < blob.length; off += size) await job.write(blob.subarray(off, off + size));
  return job.end();
}

const layer: TarEntry[] = [
  { type: 'dir', path: 'etc', mode: 0o755, ...mine },
  { type: 'file', path: 'etc/hostname', content: 'crib\n', mode: 0o640, ...mine },
  { type: 'file', path: 'bin/tool', content: 'binary', mode: 0o755, ...mine },
  { type: 'hardlink', path: 'bin/tool-hard', target: 'bin/tool', ...mine },
  { type: 'symlink', path: 'bin/sh', target: '/bin/busybox', ...mine },
  { type: 'symlink', path: 'escape', target: '../../../../etc/passwd', ...mine },
  { type: 'whiteout', path: 'var/gone.txt' },
  { type: 'whiteout', path: 'removed-dir' },
  { type: 'file', path: 'big', content: randomBytes(300 << 10), ...mine },
];

describe('UnpackPool', () => {
  it('unpacks a streamed layer exactly as the same blob from a file: hardlinks, symlinks, whiteouts', async () => {
    const tar = tarFromEntries(layer);
    const gz = gzipSync(tar);
    const blobPath = join(work, `blob-${n++}`);
    writeFileSync(blobPath, gz);
    const streamedDir = fresh();
    const job = pool.unpack(streamedDir, download(), { what: 'layer L' });
    await feed(job, gz);
    const streamed = await job.result;
    const fromFile = await pool.unpack(fresh(), { file: blobPath }).result;
    expect(streamed).toEqual(fromFile);
    expect(streamed).toMatchObject({ diffId: sha256(tar), size: tar.length, compression: 'gzip', whiteouts: 2 });

    expect(readFileSync(join(streamedDir, 'etc/hostname'), 'utf8')).toBe('crib\n');
    expect(lstatSync(join(streamedDir, 'etc/hostname')).mode & 0o7777).toBe(0o640);
    expect(lstatSync(join(streamedDir, 'bin/tool-hard')).ino).toBe(lstatSync(join(streamedDir, 'bin/tool')).ino);
    expect(readlinkSync(join(streamedDir, 'bin/sh'))).toBe('/bin/busybox');
    // A symlink is stored as written, never followed: it points nowhere on the host.
    expect(readlinkSync(join(streamedDir, 'escape'))).toBe('../../../../etc/passwd');
    for (const w of ['var/gone.txt', 'removed-dir']) {
      const st = lstatSync(join(streamedDir, w));
      expect(st.isCharacterDevice() && st.rdev === 0).toBe(true);
    }
    expect(existsSync(join(streamedDir, 'var/.wh.gone.txt'))).toBe(false);
  });

  it("writes a download's bytes to its blob file and reports their digest once the file is synced", async () => {
    const gz = gzipSync(tarFromEntries(layer));
    const blob = download();
    const job = pool.unpack(fresh(), blob);
    expect(await feed(job, gz, 1000)).toBe(sha256(gz));
    // The file is whole when end() answers, before the layer is unpacked.
    expect(readFileSync(blob.download).equals(gz)).toBe(true);
    expect(lstatSync(blob.download).mode & 0o777).toBe(0o644 & ~process.umask());
    await job.result;

    // An uncompressed layer's diffID is the blob's digest, computed by the thread once.
    const tar = tarFromEntries(layer);
    const plain = pool.unpack(fresh(), download(), { blobDigest: sha256(tar) });
    expect(await feed(plain, tar)).toBe(sha256(tar));
    expect((await plain.result).diffId).toBe(sha256(tar));
  });

  it("moves a chunk that is its buffer's sole view to the thread uncopied, and copies any other view", async () => {
    const gz = gzipSync(tarFromEntries(layer));
    const blob = download();
    const job = pool.unpack(fresh(), blob);
    const moved: Buffer[] = [];
    for (let off = 0; off < gz.length; off += 5000) {
      // As blob-http.ts hands a body on: a view past the response's framing in a buffer of its own.
      const piece = gz.subarray(off, off + 5000);
      const buf = Buffer.alloc(piece.length + 32);
      piece.copy(buf, 32);
      const chunk = markSoleView(buf.subarray(32));
      moved.push(chunk);
      await job.write(chunk);
    }
    expect(await job.end()).toBe(sha256(gz));
    await job.result;
    expect(readFileSync(blob.download).equals(gz)).toBe(true);
    // Moved: the views here are detached from their bytes.
    expect(moved.every((c) => c.buffer.byteLength === 0)).toBe(true);
    // The unmarked views of `gz` the other tests feed are copied: gz is whole after its feed.
    const copied = pool.unpack(fresh(), download());
    await feed(copied, gz);
    await copied.result;
    expect(gz.buffer.byteLength).toBeGreaterThanOrEqual(gz.length);
  });

  it('counts a moved chunk by its whole buffer against the window, however little of it the chunk fills', async () => {
    const one = new UnpackPool(1, 200);
    try {
      const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(2 << 20), ...mine }]));
      // The only slot is taken: nothing the next job is sent is acknowledged until it ends.
      const first = one.unpack(fresh(), download());
      await first.write(gz.subarray(0, 100));
      const job = one.unpack(fresh(), download());
      // 16 KiB reads, each in a 64 KiB buffer of its own, as blob-http hands on a read that filled a quarter of it.
      const chunks: Buffer[] = [];
      for (let off = 0; off < gz.length; off += 16 << 10) {
        const piece = gz.subarray(off, off + (16 << 10));
        const buf = Buffer.alloc(64 << 10);
        piece.copy(buf);
        chunks.push(markSoleView(buf.subarray(0, piece.length)));
      }
      // 2 MiB of buffers fill the window: the 33rd chunk waits (counting bytes, the 129th did).
      let fitted = 0;
      let full: Promise<void> | undefined;
      while ((full = job.write(chunks[fitted]!)) === undefined) fitted++;
      expect(fitted).toBe(32);
      await first.write(gz.subarray(100));
      await first.end();
      await first.result;
      await full;
      for (const c of chunks.slice(fitted + 1)) await job.write(c);
      expect(await job.end()).toBe(sha256(gz));
      expect((await job.result).fileBytes).toBe(2 << 20);
    } finally {
      await one.close();
    }
  });

  it('hands back the buffers of a gzip download it has inflated, and none of a plain one', async () => {
    const SIZE = 8192;
    const closeReader = openReader();
    try {
      takeReadBuffer(SIZE);
      const send = async (blob: Buffer): Promise<void> => {
        const job = pool.unpack(fresh(), download());
        for (let off = 0; off < blob.length; off += SIZE) {
          // As blob-http.ts hands a body on: a sole view of a read buffer from the recycled ones.
          const buf = takeReadBuffer(SIZE);
          const n = blob.copy(buf, 0, off, off + SIZE);
          await job.write(markSoleView(buf.subarray(0, n)));
        }
        await job.end();
        await job.result;
      };
      const tar = tarFromEntries(layer);
      await send(tar);
      expect(freeReadBuffers(SIZE)).toBe(0);
      const gz = gzipSync(tar);
      await send(gz);
      // Inflated chunks come back with the next acknowledgement; the thread keeps the last.
      expect(freeReadBuffers(SIZE)).toBeGreaterThan(0);
    } finally {
      closeReader();
    }
  });

  it('refuses a download whose blob file exists already, naming it, and writes nothing into it', async () => {
    const blob = download();
    writeFileSync(blob.download, 'someone else');
    const job = pool.unpack(fresh(), blob);
    const err = await job.result.then(() => new Error('unpacked'), (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(InternalError);
    expect(err.message).toBe(`create ${blob.download}: file already exists`);
    await expect(job.write(Buffer.from('x'))).rejects.toBe(err);
    await expect(job.end()).rejects.toBe(err);
    expect(readFileSync(blob.download, 'utf8')).toBe('someone else');
  });

  it('takes plain and zstd layers streamed in odd-sized chunks, and refuses a truncated one', async () => {
    const tar = tarFromEntries(layer);
    for (const [blob, kind, size] of [[tar, 'none', 511], [tar, 'none', 100_000], [zstdLayer(tar), 'zstd', 777]] as const) {
      const dir = fresh();
      const job = pool.unpack(dir, download());
      await feed(job, blob, size);
      const res = await job.result;
      expect([res.compression, res.diffId]).toEqual([kind, sha256(tar)]);
      expect(readFileSync(join(dir, 'bin/tool'), 'utf8')).toBe('binary');
    }
    const cut = pool.unpack(fresh(), download());
    await feed(cut, tar.subarray(0, 1000));
    await expect(cut.result).rejects.toThrow(/^layer tar is truncated/);
  });

  it('refuses a corrupt gzip stream with INVALID_ARGUMENT naming the layer', async () => {
    const gz = gzipSync(tarFromEntries(layer));
    gz[gz.length >> 1] ^= 0xff;
    const job = pool.unpack(fresh(), download(), { what: 'layer sha256:abc' });
    await feed(job, gz).catch(() => undefined);
    const err = await job.result.catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^layer sha256:abc is not a valid gzip stream|^layer tar has a corrupt header/);
  });

  it('writes and hashes every byte of a download that fails to unpack early, reporting the digest first', async () => {
    // 12 MiB, six times the window of bytes in flight: the bytes after the failure must still
    // be taken, or the download would stall.
    const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(12 << 20), ...mine }]));
    // The first deflate block header: invalid at once.
    gz.fill(0xff, 10, 12);
    const blob = download();
    const job = pool.unpack(fresh(), blob, { what: 'layer sha256:def' });
    const order: string[] = [];
    job.result.catch(() => order.push('failed'));
    // The content store checks this digest against the descriptor before the unpack's verdict.
    expect(await feed(job, gz, 64 << 10).then((d) => (order.push('digest'), d))).toBe(sha256(gz));
    await expect(job.result).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(order).toEqual(['digest', 'failed']);
    expect(readFileSync(blob.download).equals(gz)).toBe(true);
  });

  it('stops at max_layer_size and max_layer_entries, and at the image budget shared by layers', async () => {
    const big = gzipSync(tarFromEntries([{ type: 'file', path: 'big', content: Buffer.alloc(8 << 20), ...mine }]));
    const dir = fresh();
    const job = pool.unpack(dir, download(), { what: 'layer X', maxBytes: 1 << 20 });
    await feed(job, big, 64 << 10).catch(() => undefined);
    const err = await job.result.catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toMatch(/^layer X unpacks to more than 1 MiB, over the limit of 1 MiB set by image\.max_layer_size/);
    expect(lstatSync(join(dir, 'big')).size).toBeLessThanOrEqual(1 << 20);

    const many = tarFromEntries(Array.from({ length: 50 }, (_, i): TarEntry => ({ type: 'file', path: `f${i}`, content: 'x', ...mine })));
    const entries = await pool.unpack(fresh(), download(), { what: 'layer Y', maxEntries: 10 });
    await feed(entries, many).catch(() => undefined);
    await expect(entries.result).rejects.toThrow(/^layer Y has more than 10 entries, over the limit of 10 set by image\.max_layer_entries/);

    const budget = new ByteBudget('maxImageBytes', 3 << 20, 'image "i" unpacks to');
    const two = gzipSync(tarFromEntries([{ type: 'file', path: 'a', content: Buffer.alloc(2 << 20), ...mine }]));
    const first = pool.unpack(fresh(), download(), { budget });
    await feed(first, two);
    await first.result;
    const second = pool.unpack(fresh(), download(), { budget });
    await feed(second, two).catch(() => undefined);
    await expect(second.result).rejects.toThrow('image "i" unpacks to more than 3 MiB, over the limit of 3 MiB set by image.max_image_size');
  });

  it('aborts a job mid-stream, reporting the abort reason once the thread has stopped writing', async () => {
    const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(1 << 20), ...mine }]));
    const ac = new AbortController();
    const job = pool.unpack(fresh(), download(), { signal: ac.signal });
    await job.write(gz.subarray(0, 1000));
    ac.abort(new Error('pull cancelled'));
    await expect(job.result).rejects.toThrow('pull cancelled');
    await expect(job.write(gz.subarray(1000))).rejects.toThrow('pull cancelled');
    // The thread is free again for the next job.
    const next = pool.unpack(fresh(), download());
    await feed(next, gz);
    expect((await next.result).fileBytes).toBe(1 << 20);
  });

  it('runs at most maxJobs jobs, side by side on at most maxThreads threads, queues the rest, and ends idle threads', async () => {
    const small = new UnpackPool(3, 200, 2);
    try {
      const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(64 << 10), ...mine }]));
      // Three jobs open at once: the third shares a thread with one of the first two.
      const open = Array.from({ length: 3 }, () => small.unpack(fresh(), download()));
      for (const j of open) await j.write(gz.subarray(0, 100));
      // A fourth waits for a slot, though every byte of it is in.
      const queued = small.unpack(fresh(), download());
      let queuedDone = false;
      void queued.result.then(() => (queuedDone = true), () => undefined);
      // Its bytes are taken (up to the window); its blob is written once it has a slot.
      const queuedFed = feed(queued, gz);
      await new Promise((r) => setTimeout(r, 300));
      expect(queuedDone).toBe(false);
      expect(small.size).toBe(2);
      // The first one ending frees its slot for the fourth.
      await open[0]!.write(gz.subarray(100));
      await open[0]!.end();
      await queuedFed;
      expect((await queued.result).fileBytes).toBe(64 << 10);
      for (const j of open.slice(1)) {
        await j.write(gz.subarray(100));
        await j.end();
      }
      const results = await Promise.all(open.map((j) => j.result));
      expect(results.every((r) => r.fileBytes === 64 << 10)).toBe(true);
      expect(small.size).toBe(2);
      for (let i = 0; i < 100 && small.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(small.size).toBe(0);
    } finally {
      await small.close();
    }
  });

  it('runs several jobs on one thread, each finishing on its own, and warms no more threads than it may run', async () => {
    const one = new UnpackPool(3, 200, 1);
    try {
      one.warm(3);
      expect(one.size).toBe(1);
      const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(64 << 10), ...mine }]));
      const held = one.unpack(fresh(), download());
      await held.write(gz.subarray(0, 100));
      // Two more finish while the first is still open on the same thread.
      const others = [one.unpack(fresh(), download()), one.unpack(fresh(), download())];
      await Promise.all(others.map((j) => feed(j, gz)));
      expect((await Promise.all(others.map((j) => j.result))).map((r) => r.fileBytes)).toEqual([64 << 10, 64 << 10]);
      expect(one.size).toBe(1);
      await held.write(gz.subarray(100));
      await held.end();
      expect((await held.result).fileBytes).toBe(64 << 10);
    } finally {
      await one.close();
    }
  });

  it('fails every job of a thread that dies, naming each layer, and runs the next jobs on a new thread', async () => {
    const one = new UnpackPool(2, 200, 1);
    try {
      const gz = gzipSync(tarFromEntries([{ type: 'file', path: 'f', content: randomBytes(64 << 10), ...mine }]));
      const jobs = ['layer A', 'layer B'].map((what) => one.unpack(fresh(), download(), { what }));
      for (const j of jobs) await j.write(gz.subarray(0, 100));
      await one.close();
      await expect(jobs[0]!.result).rejects.toThrow(/^the unpack thread for layer A exited with code \d+$/);
      await expect(jobs[1]!.result).rejects.toThrow(/^the unpack thread for layer B exited with code \d+$/);
      expect(one.size).toBe(0);
      // Both slots are free again.
      const next = [one.unpack(fresh(), download()), one.unpack(fresh(), download())];
      await Promise.all(next.map((j) => feed(j, gz)));
      expect((await Promise.all(next.map((j) => j.result))).map((r) => r.fileBytes)).toEqual([64 << 10, 64 << 10]);
    } finally {
      await one.close();
    }
  });

  it("runs its threads at nice 10, leaving the caller's thread as it was", async () => {
    /** The nice value (field 19) of a /proc stat file. */
    const niceOf = (stat: string): number => Number(readFileSync(stat, 'utf8').split(') ')[1]!.split(' ')[16]);
    const own = niceOf('/proc/thread-self/stat');
    const job = pool.unpack(fresh(), download());
    await feed(job, gzipSync(tarFromEntries(layer)));
    await job.result;
    expect(pool.size).toBeGreaterThan(0);
    const nices = readdirSync('/proc/self/task').map((tid) => niceOf(`/proc/self/task/${tid}/stat`));
    expect(nices.filter((v) => v === 10).length).toBeGreaterThanOrEqual(pool.size);
    expect(niceOf('/proc/thread-self/stat')).toBe(own);
  });
});
