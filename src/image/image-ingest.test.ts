// ingestImage with a real content store, snapshotter and unpack pool under a temp root, fed by an
// in-memory image source whose blobs arrive in small chunks at a pace the test sets: layers
// unpack as they download, in parallel, and commit in chain order; a corrupt or mismatching layer
// fails naming its digest and leaves no staging dir, blob or snapshot of it. No root: every entry
// is owned by the test's own uid.
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DataLossError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { log } from '../log.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import { syncFilesystem } from '../sys/libc.js';
import { buildImage, layerFromEntries, sha256, type BuiltImage, type LayerBlob, type TarEntry } from '../../test-support/image-builder.js';
import { ContentStore } from './content-store.js';
import { ingestImage, type ImageSource } from './image-ingest.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './limits.js';
import type { Descriptor } from './registry/types.js';
import { UnpackPool } from './unpack/unpack-pool.js';

const mine = { uid: process.getuid!(), gid: process.getgid!() };
const pool = new UnpackPool(3, 500);
let root: string;
let content: ContentStore;
let snapshots: Snapshotter;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), `crib-ingest-${process.pid}-`));
  content = new ContentStore(root);
  await content.init();
  snapshots = new Snapshotter(root);
  await snapshots.load();
  return async () => rm(root, { recursive: true, force: true });
});
afterAll(() => pool.close());

/**
 * The image as an ImageSource; blob `i`'s bytes come in 8 KiB chunks `delays[i]` ms apart, and
 * `override` replaces a blob's bytes (a corrupt registry).
 */
function sourceOf(img: BuiltImage, delays: number[] = [], override = new Map<string, Buffer>(),
  beforeLastChunk?: (layer: number) => Promise<void>): ImageSource {
  const bytes = new Map<string, Buffer>([[img.config.digest, img.config.bytes], ...img.layers.map((l) => [l.digest, l.blob] as const)]);
  return {
    name: 'test/image:1',
    configDescriptor: { mediaType: img.config.mediaType, digest: img.config.digest, size: img.config.size },
    layers: img.layers.map((l): Descriptor => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    async openBlob(desc) {
      const data = override.get(desc.digest) ?? bytes.get(desc.digest)!;
      const i = img.layers.findIndex((l) => l.digest === desc.digest);
      const delay = delays[i] ?? 0;
      return Readable.from((async function* () {
        for (let off = 0; off < data.length; off += 8192) {
          if (delay) await sleep(delay);
          if (off + 8192 >= data.length && i >= 0) await beforeLastChunk?.(i);
          yield data.subarray(off, off + 8192);
        }
      })());
    },
  };
}

function ingest(source: ImageSource, limits: Partial<ImageLimits> = {}) {
  return ingestImage(
    { content, snapshots, concurrency: 3, log, limits: { ...DEFAULT_IMAGE_LIMITS, ...limits }, unpackPool: pool },
    source, { lease: () => undefined },
  );
}

const file = (path: string, body: string | Buffer): TarEntry => ({ type: 'file', path, content: body, mode: 0o644, ...mine });
/** The error `p` fails with (a success is a failed test). */
const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => new Error('ingest succeeded'), (e: unknown) => e as Error);
const stagingDirs = () => readdirSync(snapshots.dir).filter((n) => n.startsWith('tmp-'));

describe('ingestImage', () => {
  it('unpacks layers while they download, in parallel, and commits them in chain order', async () => {
    const layers: LayerBlob[] = [
      await layerFromEntries([file('etc/os-release', 'base\n'), file('etc/doomed', 'x'), file('bin/tool', 'v1'),
        { type: 'hardlink', path: 'bin/tool-hard', target: 'bin/tool', ...mine }]),
      await layerFromEntries([{ type: 'whiteout', path: 'etc/doomed' }, { type: 'symlink', path: 'bin/sh', target: 'tool', ...mine }]),
      await layerFromEntries([file('app/main', 'app\n')]),
    ];
    const img = buildImage({ layers });
    // The base layer is the slowest to arrive: the top one is unpacked (into its staging dir)
    // before the base has finished downloading, and waits to commit.
    let topUnpackedEarly = false;
    const res = await ingest(sourceOf(img, [5, 0, 0], undefined, async (i) => {
      if (i !== 0) return;
      for (let t = 0; t < 400 && !topUnpackedEarly; t++) {
        topUnpackedEarly = stagingDirs().some((d) => {
          try {
            return readFileSync(join(snapshots.dir, d, 'app/main'), 'utf8') === 'app\n';
          } catch {
            return false;
          }
        });
        await sleep(25);
      }
    }));
    expect(topUnpackedEarly).toBe(true);
    expect(res.diffIds).toEqual(layers.map((l) => l.diffId));
    const committed = res.chainIds.map((c) => snapshots.get(c)!);
    expect(committed.map((s) => s.parent)).toEqual([undefined, res.chainIds[0], res.chainIds[1]]);
    // Ids are given in commit order: the chain's order, not the order the unpacks finished in.
    expect(committed.map((s) => s.id)).toEqual([...committed.map((s) => s.id)].sort((a, b) => a - b));
    const [l0, l1, l2] = res.chainIds.map((c) => snapshots.lowerDirs(c)[0]!);
    expect(lstatSync(join(l0!, 'bin/tool-hard')).ino).toBe(lstatSync(join(l0!, 'bin/tool')).ino);
    const wh = lstatSync(join(l1!, 'etc/doomed'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(readlinkSync(join(l1!, 'bin/sh'))).toBe('tool');
    expect(readFileSync(join(l2!, 'app/main'), 'utf8')).toBe('app\n');
    expect(stagingDirs()).toEqual([]);
    for (const l of layers) expect(await content.has(l.digest)).toBe(true);
  });

  it('starts unpack threads for the layers it lacks, and none for an image it has whole', async () => {
    const own = new UnpackPool(3, 50, 2);
    const ingestWith = (source: ImageSource) => ingestImage(
      { content, snapshots, concurrency: 3, log, limits: DEFAULT_IMAGE_LIMITS, unpackPool: own }, source, { lease: () => undefined });
    const idle = async () => {
      for (let i = 0; i < 100 && own.size > 0; i++) await sleep(20);
      expect(own.size).toBe(0);
    };
    try {
      const base = await layerFromEntries([file('etc/os-release', 'base\n')]);
      const first = buildImage({ layers: [base] });
      await ingestWith(sourceOf(first));
      await idle();
      // Everything is here: a re-pull's ingest needs no thread.
      await ingestWith(sourceOf(first));
      expect(own.size).toBe(0);
      // Its config here, one layer of two missing: one thread, started before the layer is fetched.
      const second = buildImage({ layers: [base, await layerFromEntries([file('app/main', 'app\n')])] });
      await content.ingest({ digest: second.config.digest, size: second.config.size }, async () => Readable.from([second.config.bytes]));
      let threadsAtFetch = -1;
      const source = sourceOf(second);
      const open = source.openBlob.bind(source);
      await ingestWith({ ...source, openBlob: async (desc) => {
        threadsAtFetch = own.size;
        return open(desc);
      } });
      expect(threadsAtFetch).toBe(1);
    } finally {
      await own.close();
    }
  });

  it('starts flushing the committed layers to disk before the top one commits', async () => {
    const committedAtFlush: number[] = [];
    snapshots = new Snapshotter(root, {
      syncfs: async (fd, dir) => {
        committedAtFlush.push(snapshots.list().length);
        await syncFilesystem(fd, dir);
      },
    });
    await snapshots.load();
    const img = buildImage({ layers: [
      await layerFromEntries([file('a', 'a')]), await layerFromEntries([file('b', 'b')]), await layerFromEntries([file('c', 'c')]),
    ] });
    await ingest(sourceOf(img));
    expect(committedAtFlush.length).toBeGreaterThanOrEqual(1);
    expect(Math.min(...committedAtFlush)).toBeLessThan(3);
  });

  it("fails with a failed flush ahead's error, committing nothing more on the layers it may have lost", async () => {
    let failed!: () => void;
    const flushFailed = new Promise<void>((resolve) => (failed = resolve));
    snapshots = new Snapshotter(root, {
      syncfs: async () => {
        setTimeout(failed, 10);
        throw new Error('syncfs: input/output error');
      },
    });
    await snapshots.load();
    const img = buildImage({ layers: [
      await layerFromEntries([file('a', 'a')]), await layerFromEntries([file('b', 'b')]), await layerFromEntries([file('c', 'c')]),
    ] });
    // The second layer arrives after the first commits and its flush fails.
    const err = await failure(ingest(sourceOf(img, [], undefined, async (i) => {
      if (i === 1) await flushFailed;
    })));
    expect(err.message).toBe('syncfs: input/output error');
    expect(snapshots.list().map((s) => s.diffId)).toEqual([img.layers[0]!.diffId]);
    expect(snapshots.has(snapshots.list()[0]!.chainId)).toBe(false);
    expect(stagingDirs()).toEqual([]);
  });

  it('fails on a layer whose bytes do not match its digest, naming it, and leaves nothing of it', async () => {
    const good = await layerFromEntries([file('a', 'a')]);
    const bad = await layerFromEntries([file('b', Buffer.alloc(200_000, 7))]);
    const img = buildImage({ layers: [good, bad] });
    // Same length, one byte changed deep in the stream: detected only when the blob ends.
    const corrupt = Buffer.from(bad.blob);
    corrupt[corrupt.length - 20] ^= 0x01;
    const err = await failure(ingest(sourceOf(img, [], new Map([[bad.digest, corrupt]]))));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(bad.digest);
    expect(err instanceof DataLossError || err instanceof InvalidArgumentError).toBe(true);
    expect(stagingDirs()).toEqual([]);
    expect(await content.has(bad.digest)).toBe(false);
    expect(snapshots.list().map((s) => s.diffId)).not.toContain(bad.diffId);
  });

  it('refuses a corrupt gzip stream whose digest matches, naming the layer', async () => {
    const real = await layerFromEntries([file('f', 'x'.repeat(10_000))]);
    const gz = Buffer.from(real.blob);
    gz[gz.length >> 1] ^= 0xff;
    const broken: LayerBlob = { ...real, blob: gz, digest: sha256(gz), size: gz.length };
    const err = await failure(ingest(sourceOf(buildImage({ layers: [broken] }))));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toContain(broken.digest);
    expect(stagingDirs()).toEqual([]);
    expect(snapshots.list()).toEqual([]);
  });

  it('refuses a layer whose tar does not hash to the config\'s diff_id', async () => {
    const real = await layerFromEntries([file('f', 'real')]);
    const other = gzipSync(Buffer.alloc(1024));
    const swapped: LayerBlob = { ...real, blob: other, digest: sha256(other), size: other.length };
    const err = await failure(ingest(sourceOf(buildImage({ layers: [swapped] }))));
    expect(err).toBeInstanceOf(DataLossError);
    expect(err.message).toBe(`layer ${swapped.digest} unpacks to ${sha256(Buffer.alloc(1024))}, but the image config says diff_id ${real.diffId}`);
    expect(stagingDirs()).toEqual([]);
  });

  it('holds every layer to max_layer_size and the image to max_image_size', async () => {
    const layers = [await layerFromEntries([file('a', Buffer.alloc(3 << 20))]), await layerFromEntries([file('b', Buffer.alloc(3 << 20))])];
    const img = buildImage({ layers });
    const tooBig = await failure(ingest(sourceOf(img), { maxLayerBytes: 2 << 20 }));
    expect(tooBig).toBeInstanceOf(ResourceExhaustedError);
    expect(tooBig.message).toMatch(/^layer sha256:[0-9a-f]{64} of image "test\/image:1" unpacks to more than 2 MiB, over the limit of 2 MiB set by image\.max_layer_size/);
    const overall = await failure(ingest(sourceOf(img), { maxImageBytes: 5 << 20 }));
    expect(overall).toBeInstanceOf(ResourceExhaustedError);
    expect(overall.message).toContain('image "test/image:1" unpacks to more than 5 MiB, over the limit of 5 MiB set by image.max_image_size');
    expect(stagingDirs()).toEqual([]);
  });
});
