import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLossError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { slowStream } from '../../test-support/slow-stream.js';
import { sha256 } from '../../test-support/tar-fixtures.js';
import { ContentStore, type BlobSink } from './content-store.js';

let root: string;
let store: ContentStore;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), `crib-content-${process.pid}-`));
  store = new ContentStore(root);
  await store.init();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function ingestDirEmpty(): boolean {
  return readdirSync(join(root, 'content', 'ingest')).length === 0;
}

describe('ContentStore', () => {
  it('ingests a blob, verifies it and serves it back', async () => {
    const data = Buffer.from('hello content store'.repeat(1000));
    const digest = sha256(data);
    const progress: number[] = [];
    const path = await store.ingest({ digest, size: data.length }, async () => slowStream(data),
      { onProgress: (n) => progress.push(n) });
    expect(path).toBe(join(root, 'content', 'sha256', digest.slice(7)));
    expect(readFileSync(path)).toEqual(data);
    expect(progress[progress.length - 1]).toBe(data.length);
    expect(await store.has(digest)).toBe(true);
    expect(await store.readBytes(digest)).toEqual(data);
    expect(await store.list()).toContain(digest);
    // Already present: returns at once without opening anything.
    await store.ingest({ digest, size: data.length }, async () => {
      throw new Error('must not be called');
    });
    expect(ingestDirEmpty()).toBe(true);
  });

  it('rejects a digest mismatch with DataLossError and keeps nothing', async () => {
    const data = Buffer.from('the real bytes');
    const claimed = sha256('other bytes');
    const err = await store.ingest({ digest: claimed, size: data.length }, async () => Readable.from([data]))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataLossError);
    expect((err as Error).message).toContain(claimed);
    expect((err as Error).message).toContain(sha256(data));
    expect(await store.has(claimed)).toBe(false);
    expect(ingestDirEmpty()).toBe(true);
  });

  it("writes through the caller's sink, checks the digest it reports, and removes the file only once it has stopped", async () => {
    const data = Buffer.from('bytes a sink writes');
    const digest = sha256(data);
    const events: string[] = [];
    /** Writes the temp file as an unpack thread would, reporting `claim` as the digest. */
    const sinkAt = (claim: string) => (path: string): BlobSink => ({
      write: (chunk) => {
        appendFileSync(path, chunk);
        return undefined;
      },
      end: async () => claim,
      stop: async (err) => {
        events.push(`stop: ${err.message} (file there: ${existsSync(path)})`);
      },
    });
    const lied = await store.ingest({ digest, size: data.length }, async () => Readable.from([data]),
      { sinkAt: sinkAt(sha256('other')) }).then(() => new Error('ingested'), (e: unknown) => e as Error);
    expect(lied).toBeInstanceOf(DataLossError);
    expect(events).toEqual([`stop: ${lied.message} (file there: true)`]);
    expect(await store.has(digest)).toBe(false);
    expect(ingestDirEmpty()).toBe(true);

    const path = await store.ingest({ digest, size: data.length }, async () => Readable.from([data]), { sinkAt: sinkAt(digest) });
    expect(readFileSync(path)).toEqual(data);
    expect(ingestDirEmpty()).toBe(true);
  });

  it('hands the sink each chunk as the source pushed it, none concatenated while the sink holds the download back', async () => {
    const chunks = [Buffer.from('first '), Buffer.from('second '), Buffer.from('third')];
    const data = Buffer.concat(chunks);
    const digest = sha256(data);
    const source = new Readable({ read() {} });
    const got: Buffer[] = [];
    let room: (() => void) | undefined;
    const sinkAt = (path: string): BlobSink => ({
      write: (chunk) => {
        got.push(chunk);
        appendFileSync(path, chunk);
        // The first chunk fills the window: the rest arrive while the download is held back.
        return got.length === 1 ? new Promise<void>((r) => (room = r)) : undefined;
      },
      end: async () => digest,
      stop: async () => undefined,
    });
    const ingest = store.ingest({ digest, size: data.length }, async () => source, { sinkAt });
    source.push(chunks[0]);
    while (!room) await new Promise((r) => setImmediate(r));
    source.push(chunks[1]);
    source.push(chunks[2]);
    source.push(null);
    room();
    expect(readFileSync(await ingest)).toEqual(data);
    expect(got).toHaveLength(3);
    got.forEach((c, i) => expect(c).toBe(chunks[i]));
  });

  it('rejects short and long bodies with DataLossError naming expected and got sizes', async () => {
    const data = Buffer.from('0123456789');
    const digest = sha256(data);
    const short = await store.ingest({ digest, size: 11 }, async () => Readable.from([data])).catch((e: unknown) => e);
    expect(short).toBeInstanceOf(DataLossError);
    expect((short as Error).message).toMatch(/expected 11 bytes, got 10/);
    const long = await store.ingest({ digest, size: 5 }, async () => Readable.from([data])).catch((e: unknown) => e);
    expect(long).toBeInstanceOf(DataLossError);
    expect((long as Error).message).toMatch(/expected 5 bytes/);
    expect(await store.has(digest)).toBe(false);
    expect(ingestDirEmpty()).toBe(true);
  });

  it('shares one download between concurrent ingests of a digest', async () => {
    const data = Buffer.alloc(256 * 1024, 9);
    const digest = sha256(data);
    let opens = 0;
    const open = async (): Promise<Readable> => {
      opens += 1;
      return slowStream(data, 16384);
    };
    const paths = await Promise.all([1, 2, 3, 4].map(() => store.ingest({ digest, size: data.length }, open)));
    expect(opens).toBe(1);
    expect(new Set(paths).size).toBe(1);
    expect(readFileSync(paths[0]!)).toEqual(data);
  });

  it('stops on abort and removes the partial file', async () => {
    const data = Buffer.alloc(1024 * 1024, 3);
    const ac = new AbortController();
    const p = store.ingest({ digest: sha256(data), size: data.length }, async () => slowStream(data, 1024),
      { signal: ac.signal, onProgress: (n) => { if (n > 10_000) ac.abort(); } });
    await expect(p).rejects.toThrow(/abort/i);
    expect(await store.has(sha256(data))).toBe(false);
    expect(ingestDirEmpty()).toBe(true);
  });

  it('a waiter whose shared download was aborted by its owner fetches the blob itself', async () => {
    const data = Buffer.alloc(512 * 1024, 5);
    const digest = sha256(data);
    let opens = 0;
    const open = async (): Promise<Readable> => {
      opens += 1;
      return slowStream(data, 16384);
    };
    const owner = new AbortController();
    const first = store.ingest({ digest, size: data.length }, open,
      { signal: owner.signal, onProgress: (n) => { if (n > 8192) owner.abort(); } });
    const waiter = store.ingest({ digest, size: data.length }, open);
    await expect(first).rejects.toThrow(/abort/i);
    expect(readFileSync(await waiter)).toEqual(data);
    expect(opens).toBe(2);
    expect(ingestDirEmpty()).toBe(true);
  });

  it('validates digests, deletes blobs, cleans leftover ingests and reports usage', async () => {
    await expect(store.ingest({ digest: 'sha256:xyz', size: 1 }, async () => Readable.from([]))).rejects
      .toBeInstanceOf(InvalidArgumentError);
    expect(() => store.path('md5:00')).toThrow(InvalidArgumentError);
    const data = Buffer.from('to delete');
    const digest = sha256(data);
    await store.ingest({ digest, size: data.length }, async () => Readable.from([data]));
    const before = await store.usage();
    expect(before.inodes).toBeGreaterThanOrEqual(3);
    expect(await store.delete(digest)).toBe(true);
    expect(await store.delete(digest)).toBe(false);
    await expect(store.readBytes(digest)).rejects.toBeInstanceOf(NotFoundError);
    // Something that is not a blob under a blob's name stays, and the error names it.
    const odd = sha256('a directory');
    mkdirSync(store.path(odd));
    await expect(store.delete(odd)).rejects.toThrow(`remove ${store.path(odd)}: illegal operation on a directory`);
    rmSync(store.path(odd), { recursive: true });

    writeFileSync(join(root, 'content', 'ingest', 'leftover-1'), 'partial');
    writeFileSync(join(root, 'content', 'ingest', 'leftover-2'), 'partial');
    expect(await store.cleanupIngest()).toBe(2);
    expect(ingestDirEmpty()).toBe(true);
    expect(existsSync(join(root, 'content', 'sha256'))).toBe(true);
  });
});
