// A pull's flush of the snapshots on a disk that loses writes for real (test-support/failing-disk.ts):
// the kernel tells each descriptor of the filesystem about a writeback error once, and one
// opened after another syncfs took the error nothing. Each pull's flush, through the descriptor
// it opened before writing, still fails. The counting rules: src/snapshot/snapshot-flush.test.ts.
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InternalError, ResourceExhaustedError } from '../../src/errors.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { syncFilesystem } from '../../src/sys/libc.js';
import { FailingDisk } from '../../test-support/failing-disk.js';

const chain = (c: string): string => `sha256:${c.repeat(64)}`;
let root: string;
let disk: FailingDisk;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-flush-disk-'));
  disk = await FailingDisk.make(root);
});
afterAll(async () => {
  await disk?.remove();
  await rm(root, { recursive: true, force: true });
});

describe("a pull's flush on a disk that loses writes", () => {
  it('fails every pull that was running when the disk lost a layer, though another pull met the error first', async () => {
    const snaps = new Snapshotter(disk.dir);
    await snaps.load();
    const first = await snaps.openFlush();
    const second = await snaps.openFlush();
    try {
      // More than the disk can hold: its writeback fails.
      await snaps.ensureLayer(chain('a'), undefined, (dir) => writeFile(join(dir, 'big'), Buffer.alloc(32 << 20, 0xab)), first);
      const error = new RegExp(`^syncfs ${snaps.dir}: (i/o error|no space left on device)$`);
      const secondFailed = await second.flush().then(() => undefined, (e: unknown) => e as Error);
      // EIO, or ENOSPC when the filesystem learnt it while allocating blocks for the writeback.
      expect(secondFailed instanceof InternalError || secondFailed instanceof ResourceExhaustedError).toBe(true);
      expect(secondFailed?.message).toMatch(error);
      // The second pull's syncfs took the error. A descriptor opened now is told nothing: a
      // flush that opened the dir only when it ran would report the first pull as stored.
      const late = await open(snaps.dir, 'r');
      try {
        await expect(syncFilesystem(late.fd, snaps.dir)).resolves.toBeUndefined();
      } finally {
        await late.close();
      }
      await expect(first.flush()).rejects.toThrow(error);
      expect(snaps.has(chain('a'))).toBe(false);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
