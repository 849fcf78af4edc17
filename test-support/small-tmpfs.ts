// A small tmpfs a test can fill to the last byte (a full disk) and free again. Mounted at a
// directory the test owns; unmount() removes it (lazily, so a process still holding a file open
// there cannot keep the mount alive).
import { execFile } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class SmallTmpfs {
  private constructor(readonly dir: string) {}

  static async mount(dir: string, size = '1m'): Promise<SmallTmpfs> {
    await mkdir(dir, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
    return new SmallTmpfs(dir);
  }

  private get filler(): string {
    return join(this.dir, '.filler');
  }

  /** Writes a file until the kernel answers ENOSPC, in big writes and then byte by byte. */
  async fill(): Promise<void> {
    const fh = await open(this.filler, 'a');
    try {
      for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(1)]) {
        try {
          for (;;) await fh.write(chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        }
      }
    } finally {
      await fh.close();
    }
  }

  async free(): Promise<void> {
    await rm(this.filler, { force: true });
  }

  async unmount(): Promise<void> {
    await run('umount', ['-l', this.dir]).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
