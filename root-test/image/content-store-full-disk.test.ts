// The content store on a real full filesystem (a tiny tmpfs): root only, so not in the unit tier.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../src/errors.js';
import { ContentStore } from '../../src/image/content-store.js';
import { UnpackPool, type LayerUnpack } from '../../src/image/unpack/unpack-pool.js';
import { slowStream } from '../../test-support/slow-stream.js';
import { tarFromEntries } from '../../test-support/image-builder.js';
import { sha256 } from '../../test-support/tar-fixtures.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'crib-content-full-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('ContentStore on a full disk', () => {
  it('fails an ingest with RESOURCE_EXHAUSTED naming the file it was writing, leaving no temp', async () => {
    const mnt = join(root, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      const small = new ContentStore(mnt);
      await small.init();
      const data = randomBytes(256 << 10);
      const err = await small.ingest({ digest: sha256(data), size: data.length }, async () => slowStream(data, 16 << 10))
        .then(() => new Error('ingested'), (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(ResourceExhaustedError);
      expect(err.message).toMatch(new RegExp(`^write ${join(mnt, 'content', 'ingest')}/[0-9a-f]{16}-[0-9a-f]{12}: no space left on device$`));
      expect(readdirSync(join(mnt, 'content', 'ingest'))).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it("fails a layer's ingest the same way when its unpack thread writes the blob, once the thread has stopped", async () => {
    const mnt = join(root, 'small-layer');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    const pool = new UnpackPool(1, 200);
    try {
      const small = new ContentStore(mnt);
      await small.init();
      // Incompressible: the blob alone outgrows the filesystem.
      const blob = gzipSync(tarFromEntries([{ type: 'file', path: 'big', content: randomBytes(512 << 10) }]), { level: 0 });
      let job: LayerUnpack | undefined;
      const err = await small.ingest({ digest: sha256(blob), size: blob.length }, async () => slowStream(blob, 16 << 10), {
        sinkAt: (tmp) => (job = pool.unpack(join(mnt, 'layer'), { download: tmp })),
      }).then(() => new Error('ingested'), (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(ResourceExhaustedError);
      expect(err.message).toMatch(new RegExp(`^write ${join(mnt, 'content', 'ingest')}/[0-9a-f]{16}-[0-9a-f]{12}: no space left on device$`));
      // The thread had stopped before the temp was removed: nothing recreated it.
      await expect(job!.result).rejects.toBe(err);
      expect(readdirSync(join(mnt, 'content', 'ingest'))).toEqual([]);
    } finally {
      await pool.close();
      execFileSync('umount', [mnt]);
    }
  });
});
