// A pull whose snapshot disk loses the writes of a layer fails, and says so: ingestImage on a disk
// that loses writes for real (test-support/failing-disk.ts), the content store on a good one.
// Which call hears of it first depends on the kernel's timing: the flush of the committed layer
// (syncfs), or the fsync of the next layer's record once the disk has nowhere to put it (write).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/image/content-store.js';
import { ingestImage, type ImageSource } from '../../src/image/image-ingest.js';
import { DEFAULT_IMAGE_LIMITS } from '../../src/image/limits.js';
import { UnpackPool } from '../../src/image/unpack/unpack-pool.js';
import { log } from '../../src/log.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { FailingDisk } from '../../test-support/failing-disk.js';
import { buildImage, layerFromEntries, type BuiltImage } from '../../test-support/image-builder.js';

let root: string;
let disk: FailingDisk;
const pool = new UnpackPool(3, 500);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-ingest-disk-'));
  disk = await FailingDisk.make(root);
});
afterAll(async () => {
  await pool.close();
  await disk?.remove();
  await rm(root, { recursive: true, force: true });
});

function sourceOf(img: BuiltImage): ImageSource {
  const bytes = new Map([[img.config.digest, img.config.bytes], ...img.layers.map((l) => [l.digest, l.blob] as const)]);
  return {
    name: 'test/lost-writes:1',
    configDescriptor: { mediaType: img.config.mediaType, digest: img.config.digest, size: img.config.size },
    layers: img.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    openBlob: async (desc) => Readable.from([bytes.get(desc.digest)!]),
  };
}

describe('ingestImage on a snapshot disk that loses writes', () => {
  it("fails the pull with the disk's error", async () => {
    const contentRoot = join(root, 'content-root');
    await mkdir(contentRoot);
    const content = new ContentStore(contentRoot);
    await content.init();
    const snapshots = new Snapshotter(disk.dir);
    await snapshots.load();
    const owner = { uid: 0, gid: 0, mode: 0o644 };
    // The base layer is more than the disk holds: the flush that starts once it commits fails.
    const img = buildImage({ layers: [
      await layerFromEntries([{ type: 'file', path: 'big', content: Buffer.alloc(32 << 20, 0xab), ...owner }]),
      await layerFromEntries([{ type: 'file', path: 'small', content: 'top', ...owner }]),
    ] });
    const pulled = ingestImage(
      { content, snapshots, concurrency: 3, log, limits: DEFAULT_IMAGE_LIMITS, unpackPool: pool },
      sourceOf(img), { lease: () => undefined },
    );
    await expect(pulled).rejects.toThrow(new RegExp(`^(syncfs|write) ${snapshots.dir}(/\\S+)?: (i/o error|no space left on device)$`));
  });
});
