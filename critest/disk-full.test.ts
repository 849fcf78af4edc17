// A node whose disk is full, end to end: the daemon's root is a small tmpfs, filled to the last
// byte while the daemon runs. RunPodSandbox and PullImage must answer RESOURCE_EXHAUSTED naming
// the file they could not write and the OS's reason (kubelet backs off and retries; the
// operator knows which filesystem to free), never INTERNAL "see the daemon log"; they must leave
// nothing half-made; and once space is freed the same calls must succeed.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

/** Write zeros to `file` until its filesystem has not one byte left. */
function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const chunk of [Buffer.alloc(1 << 16), Buffer.alloc(1)]) {
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('a daemon whose root filesystem is full', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let root: string;
  let mounted = false;
  let image: string;

  beforeAll(async () => {
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    dir = await mkdtemp(join(tmpdir(), 'crib-disk-full-'));
    root = join(dir, 'root');
    mkdirSync(root);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', root]);
    mounted = true;
    d = await startDaemon({ dir });
  });
  afterAll(async () => {
    if (d) {
      await d.stop();
      if (mounted) execFileSync('umount', [root]);
      await d.cleanup();
    } else if (mounted) {
      execFileSync('umount', [root]);
      rmSync(dir, { recursive: true, force: true });
    }
    await registry?.stop();
  });

  const podConfig = (name: string) => podConfigFactory('disk-full', join(dir, 'logs'))(name);

  it('answers RunPodSandbox and PullImage with RESOURCE_EXHAUSTED naming the file, then works once space is freed', async () => {
    const filler = join(root, 'filler');
    fillUp(filler);

    await expect(d.cri.runtime.RunPodSandbox({ config: podConfig('full') })).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(new RegExp(`^write ${root}/pods/[0-9a-f]{64}\\.json: no space left on device$`)),
    });
    expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
    expect(readdirSync(join(root, 'pods'))).toEqual([]);
    // Nothing is made before the record: no pod dir, no namespace (an address taken meanwhile is
    // given back).
    expect(existsSync(join(d.state, 'pods')) ? readdirSync(join(d.state, 'pods')) : []).toEqual([]);

    await expect(d.cri.image.PullImage({ image: { image } })).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(new RegExp(`^write ${root}/content/ingest/[0-9a-f-]+: no space left on device$`)),
    });
    expect(readdirSync(join(root, 'content', 'ingest'))).toEqual([]);
    expect((await d.cri.image.ListImages({})).images).toEqual([]);

    rmSync(filler);
    const { imageRef } = await d.cri.image.PullImage({ image: { image } });
    expect(imageRef).toMatch(/^sha256:/);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('freed') });
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.state).toBe('SANDBOX_READY');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
