// The pod /dev/shm tmpfs (src/sandbox/pod-files.ts's ShmMounts) without mounting: the fake keeps
// the set of "mounted" paths and refuses what the kernel would refuse (a missing mount point, a
// second mount on the same path), so a unit test can tell whether a pod left one behind.
import { statSync } from 'node:fs';
import type { ShmMounts } from '../src/sandbox/pod-files.js';

export class FakeShmMounts implements ShmMounts {
  readonly mounted = new Set<string>();

  async mount(path: string): Promise<void> {
    if (!statSync(path).isDirectory()) throw new Error(`fake shm: mount point ${path} is not a directory`);
    if (this.mounted.has(path)) throw new Error(`fake shm: ${path} is already mounted`);
    this.mounted.add(path);
  }

  async release(path: string): Promise<void> {
    this.mounted.delete(path);
  }
}
