// The writable layers of ContainerService (src/container/container-service.ts's WritableLayers)
// as plain directories, for unit tests: no root, no overlay mounts. What the real snapshotter
// does is tested by root-test/snapshot/.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WritableLayers } from '../src/container/container-service.js';

/**
 * Writable layers as directories: prepare makes one, mount makes the mount point (empty: what
 * the image has is only in `imageLayers`, the committed layers of each chain).
 */
export class DirLayers implements WritableLayers {
  readonly imageLayers = new Map<string, string[]>();
  /** When set, each mount waits for it (and fails if it rejects). */
  mountGate: Promise<void> | undefined;
  /** When set, each prepare waits for it once its dir is made (and fails if it rejects). */
  prepareGate: Promise<void> | undefined;
  constructor(readonly dir: string) {}
  async prepare(key: string): Promise<void> {
    await mkdir(join(this.dir, key), { recursive: false });
    await this.prepareGate;
  }
  mounts(key: string): { upperdir: string; lowerdirs: string[] } {
    return { upperdir: join(this.dir, key), lowerdirs: [] };
  }
  lowerDirs(chainId: string): string[] {
    return this.imageLayers.get(chainId) ?? [];
  }
  async mount(_key: string, target: string): Promise<void> {
    await mkdir(target, { recursive: true });
    await this.mountGate;
  }
  async unmount(): Promise<void> {}
  async remove(key: string): Promise<void> {
    await rm(join(this.dir, key), { recursive: true, force: true });
  }
}
