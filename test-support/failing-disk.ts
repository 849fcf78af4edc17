// A filesystem whose disk loses writes, for real: ext4 on a loop device over a sparse 256 MiB
// image that lives on a 16 MiB tmpfs. Writes into the filesystem succeed (they land in the page
// cache); their writeback fails once the tmpfs is full, and the kernel reports the error as a
// filesystem's writeback error (EIO from syncfs). No device-mapper needed.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SmallTmpfs } from './small-tmpfs.js';

const run = promisify(execFile);

export class FailingDisk {
  private constructor(readonly dir: string, private readonly backing: SmallTmpfs, private readonly loop: string) {}

  /** Make it under `root` (a dir the test owns); `dir` is the mounted filesystem. */
  static async make(root: string): Promise<FailingDisk> {
    const backing = await SmallTmpfs.mount(join(root, 'backing'), '16m');
    const image = join(backing.dir, 'disk.img');
    let loop: string | undefined;
    try {
      await run('truncate', ['-s', '256M', image]);
      // No journal and no lazy inode-table zeroing: nothing writes to the disk but the test.
      await run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', image]);
      loop = (await run('losetup', ['--find', '--show', image])).stdout.trim();
      const dir = join(root, 'disk');
      await mkdir(dir, { recursive: true });
      await run('mount', ['-t', 'ext4', '-o', 'errors=continue,noinit_itable', loop, dir]);
      return new FailingDisk(dir, backing, loop);
    } catch (err) {
      if (loop) await run('losetup', ['-d', loop]).catch(() => undefined);
      await backing.unmount();
      throw err;
    }
  }

  /** Unmount it (its lost pages are dropped) and free the loop device and the tmpfs. */
  async remove(): Promise<void> {
    await run('umount', [this.dir]).catch(() => run('umount', ['-l', this.dir]));
    await run('losetup', ['-d', this.loop]).catch(() => undefined);
    await this.backing.unmount();
  }
}
