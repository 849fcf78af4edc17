// An image volume's image_sub_path used to reach the host (KEP-4639 subPath): the image is the
// attacker's, so its symlinks are too. An image ships symlinks aimed at a host directory holding
// a secret, one absolute and one climbing out of the image with "../", and a pod asks for them as
// the sub path. Were the sub path resolved by following symlinks on the host, the container would
// get the host directory bound in; crib must refuse both (INVALID_ARGUMENT) and mount nothing.
// A symlink that stays inside the image still works, so the refusal is not a blanket one.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, layerFromEntries, pushBusybox, pushImage, type TarEntry } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

describe('image volume sub paths cannot reach the host', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let secretDir: string;
  let busybox: string;
  let imageId: string;

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-ivsec-logs-'));
    secretDir = await mkdtemp(join(tmpdir(), 'crib-ivsec-secret-'));
    await writeFile(join(secretDir, 'secret'), 'host secret\n');
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    busybox = `${registry.host}/library/busybox:latest`;
    // Enough "../" to climb from any mount point to the host's "/": the kernel stops at "/".
    const climb = `${'../'.repeat(40)}${secretDir.slice(1)}`;
    const link = (path: string, target: string): TarEntry => ({ type: 'symlink', path, target, mode: 0o777 });
    const evil = buildImage({
      layers: [await layerFromEntries([
        { type: 'dir', path: 'inside', mode: 0o755 }, { type: 'file', path: 'inside/ok', content: 'image file\n', mode: 0o644 },
        link('absolute', secretDir), link('climbing', climb), link('nested/deeper', '../../..'), link('fine', 'inside'),
      ])],
    });
    await pushImage(registry, 'evil/volume', 'v1', evil);
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image: busybox } });
    imageId = (await d.cri.image.PullImage({ image: { image: `${registry.host}/evil/volume:v1` } })).imageRef;
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
    await rm(secretDir, { recursive: true, force: true });
  });

  it('refuses symlinks that leave the image and binds nothing of the host', async () => {
    const config = podConfigFactory('default', logDir)('ivsec');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const create = (name: string, imageSubPath: string) => d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: {
        metadata: { name, attempt: 0 }, image: { image: busybox }, command: ['/bin/sh', '-c', 'exec sleep 1000'],
        mounts: [{ containerPath: '/vol', image: { image: imageId }, imageSubPath, readonly: true }],
      },
    });
    for (const [i, sub] of ['absolute', 'climbing', 'absolute/', 'fine/../absolute', 'nested/deeper'].entries()) {
      const err = await create(`attack${i}`, sub).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(err, `${sub} was accepted`).toBeDefined();
      expect(err!.code, `${sub}: ${err!.details}`).toBe(status.INVALID_ARGUMENT);
      expect(err!.details, sub).toMatch(/leads outside the image through a symlink|must not contain "\.\."/);
    }
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(secretDir);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('image-volumes');

    // The same image through a symlink that stays inside it mounts fine.
    const { containerId } = await create('inside', 'fine');
    await d.cri.runtime.StartContainer({ containerId });
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', 'cat /vol/ok; ls /vol'], timeout: '10' });
    expect(r.stdout.toString()).toBe('image file\nok\n');
    await d.cri.runtime.RemoveContainer({ containerId });
    expect(existsSync(join(d.state, 'containers', containerId))).toBe(false);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
