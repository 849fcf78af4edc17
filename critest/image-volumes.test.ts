// Image volumes (CRI Mount.image and image_sub_path, KEP-4639) end to end: images this test
// builds, pulled from the loopback registry, mounted read-only into containers of a real daemon.
// Every request goes through the CRI as kubelet sends it (the image named by the id PullImage
// returned); what is left on the host is read from the host itself.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, layerFromEntries, pushBusybox, pushImage, type BuiltImage, type TarEntry } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const file = (path: string, content: string, mode = 0o644): TarEntry => ({ type: 'file', path, content, mode });
const dir = (path: string): TarEntry => ({ type: 'dir', path, mode: 0o755 });
const symlink = (path: string, target: string): TarEntry => ({ type: 'symlink', path, target, mode: 0o777 });

/** Host mounts (as /proc/self/mountinfo lists them) under `prefix`. */
function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(prefix));
}

describe('image volumes', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let busybox: string;
  /** Two layers: data/ in the first, data/sub/second.txt and the symlinks in the second. */
  let data: BuiltImage;
  let dataRef: string;
  let dataId: string;
  /** One layer (the overlay needs padding below two). */
  let single: BuiltImage;
  let singleId: string;

  const podConfig = (name: string) => podConfigFactory('default', logDir)(name);
  const containerConfig = (name: string, mounts: unknown[]) => ({
    metadata: { name, attempt: 0 },
    image: { image: busybox },
    command: ['/bin/sh', '-c', 'exec sleep 1000'],
    mounts,
  });
  const volume = (image: string, containerPath: string, imageSubPath = '') =>
    ({ containerPath, image: { image }, imageSubPath, readonly: true });

  /** Nothing of any image volume is left: no mount, no view snapshot, no container dir. */
  function expectNothingLeft(): void {
    expect(mountsUnder(d.state).filter((p) => p.includes('image-volumes'))).toEqual([]);
    expect(readdirSync(join(d.root, 'snapshots', 'active')).filter((n) => n.includes('-iv'))).toEqual([]);
    expect(existsSync(join(d.state, 'containers')) ? readdirSync(join(d.state, 'containers')) : []).toEqual([]);
  }

  async function exec(containerId: string, script: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', script], timeout: '10' });
    return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-imagevol-logs-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    busybox = `${registry.host}/library/busybox:latest`;
    data = buildImage({
      layers: [
        await layerFromEntries([dir('data'), file('data/hello.txt', 'hello from the image\n'), file('data/run.sh', '#!/bin/sh\necho ran\n', 0o755)]),
        await layerFromEntries([
          dir('data/sub'), file('data/sub/second.txt', 'second layer\n'),
          symlink('data/inside', 'sub'), symlink('data/climb', '../../..'), symlink('data/abs', '/data/sub'),
          symlink('data/hostetc', '/etc'),
        ]),
      ],
    });
    await pushImage(registry, 'vol/data', 'v1', data);
    dataRef = `${registry.host}/vol/data:v1`;
    single = buildImage({ layers: [await layerFromEntries([file('only.txt', 'one layer\n')])] });
    await pushImage(registry, 'vol/single', 'v1', single);
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image: busybox } });
    dataId = (await d.cri.image.PullImage({ image: { image: dataRef } })).imageRef;
    singleId = (await d.cri.image.PullImage({ image: { image: `${registry.host}/vol/single:v1` } })).imageRef;
    expect(dataId).toBe(data.config.digest);
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
  });

  it('mounts an image read-only, nosuid, nodev and noexec, with and without a sub path, and reports it', async () => {
    const config = podConfig('vols');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const mounts = [
      volume(dataId, '/vol'),
      volume(dataId, '/sub', 'data/sub'),
      volume(dataRef, '/through-link', './data//inside/'),
      volume(singleId, '/single'),
    ];
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('reader', mounts), sandboxConfig: config });
    await d.cri.runtime.StartContainer({ containerId });

    // Both layers are there, merged.
    let r = await exec(containerId, 'cat /vol/data/hello.txt /vol/data/sub/second.txt /single/only.txt');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hello from the image\nsecond layer\none layer\n' });
    // The sub path is the directory itself, not the image's root.
    r = await exec(containerId, 'ls -a /sub; echo --; ls /through-link');
    expect(r.stdout).toBe('.\n..\nsecond.txt\n--\nsecond.txt\n');
    // Writes fail everywhere, new files and existing ones alike.
    for (const target of ['/vol/new', '/vol/data/hello.txt', '/sub/new', '/single/only.txt']) {
      r = await exec(containerId, `echo x > ${target}`);
      expect(r.exitCode, target).not.toBe(0);
      expect(r.stderr, target).toMatch(/Read-only file system/);
    }
    // noexec: the executable script cannot be run from the volume...
    r = await exec(containerId, '/vol/data/run.sh');
    expect(r.exitCode).toBe(126);
    expect(r.stderr).toMatch(/Permission denied/);
    // ...though its contents are readable (a shell can still read it as data).
    expect((await exec(containerId, 'sh /vol/data/run.sh')).stdout).toBe('ran\n');
    // The container's own view of its mounts: every volume ro, nosuid, nodev, noexec.
    const info = (await exec(containerId, 'cat /proc/self/mountinfo')).stdout.split('\n');
    for (const path of ['/vol', '/sub', '/through-link', '/single']) {
      const line = info.find((l) => l.split(' ')[4] === path);
      expect(line, path).toBeDefined();
      expect(line!.split(' ')[5]!.split(','), path).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    }

    // ContainerStatus names each image and its digest (ImageSpec.image_ref, KEP-5365).
    const st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.mounts.map((m: { containerPath: string; image: { image: string; imageRef: string }; imageSubPath: string }) =>
      [m.containerPath, m.image.image, m.image.imageRef, m.imageSubPath])).toEqual([
      ['/vol', dataId, dataId, ''],
      ['/sub', dataId, dataId, 'data/sub'],
      ['/through-link', dataRef, dataId, './data//inside/'],
      ['/single', singleId, singleId, ''],
    ]);
    expect(mountsUnder(join(d.state, 'containers', containerId, 'image-volumes')).length).toBe(4 + 2);

    await d.cri.runtime.RemoveContainer({ containerId });
    expectNothingLeft();
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('refuses sub paths that leave the image, are missing or are not directories, and missing images, leaving nothing', async () => {
    const config = podConfig('refused');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const cases: Array<[string, unknown, number, RegExp]> = [
      ['..', volume(dataId, '/v', 'data/../../etc'), status.INVALID_ARGUMENT, /imageSubPath "data\/\.\.\/\.\.\/etc" must not contain "\.\."/],
      ['absolute', volume(dataId, '/v', '/etc'), status.INVALID_ARGUMENT, /imageSubPath "\/etc" must be relative to the image's root/],
      ['a symlink climbing out', volume(dataId, '/v', 'data/climb/etc'), status.INVALID_ARGUMENT, /imageSubPath "data\/climb\/etc" of image .* leads outside the image through a symlink/],
      ['an absolute symlink', volume(dataId, '/v', 'data/hostetc'), status.INVALID_ARGUMENT, /imageSubPath "data\/hostetc" of image .* leads outside the image/],
      ['a missing path', volume(dataId, '/v', 'data/nope'), status.NOT_FOUND, /imageSubPath "data\/nope" of image .* does not exist in the image/],
      ['a file', volume(dataId, '/v', 'data/hello.txt'), status.INVALID_ARGUMENT, /imageSubPath "data\/hello.txt" of image .* is not a directory/],
      ['a missing image', volume(`${registry.host}/vol/never-pulled:v1`, '/v'), status.NOT_FOUND, /image "127\.0\.0\.1:\d+\/vol\/never-pulled:v1" is not present; pull it first/],
      ['a hostPath too', { ...volume(dataId, '/v'), hostPath: '/etc' }, status.INVALID_ARGUMENT, /hostPath "\/etc" and image .* are mutually exclusive/],
      // Refused only once the spec is built, after the volumes were mounted: the rollback undoes them.
      ['a later bad host mount', { containerPath: '/h', hostPath: '/etc/passwd/x', readonly: true }, status.FAILED_PRECONDITION, /hostPath \/etc\/passwd\/x does not exist and cannot be created/],
    ];
    for (const [i, [what, mount, code, message]] of cases.entries()) {
      // A good volume first: the refusal of the second must undo it as well.
      const mounts = [volume(singleId, '/ok'), mount];
      const err = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig(`c${i}`, mounts), sandboxConfig: config })
        .then(() => undefined, (e: { code: number; details: string }) => e);
      expect(err, what).toBeDefined();
      expect(err!.code, `${what}: ${err!.details}`).toBe(code);
      expect(err!.details, what).toMatch(message);
      expectNothingLeft();
    }
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('keeps an image a volume mounts from RemoveImage until the container is removed, across a daemon restart', async () => {
    const victim = buildImage({ layers: [await layerFromEntries([dir('keep'), file('keep/me.txt', 'still here\n')])] });
    await pushImage(registry, 'vol/victim', 'v1', victim);
    const ref = `${registry.host}/vol/victim:v1`;
    const id = (await d.cri.image.PullImage({ image: { image: ref } })).imageRef;
    const config = podConfig('holder');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: containerConfig('holder', [volume(id, '/keep', 'keep')]), sandboxConfig: config });
    await d.cri.runtime.StartContainer({ containerId });

    const refused = async () => {
      for (const name of [ref, id]) {
        const err = await d.cri.image.RemoveImage({ image: { image: name } }).then(() => undefined, (e: { code: number; details: string }) => e);
        expect(err?.code, name).toBe(status.FAILED_PRECONDITION);
        expect(err!.details).toContain(`mounted as an image volume by container ${containerId}`);
      }
      expect((await d.cri.image.ImageStatus({ image: { image: id } })).image.id).toBe(id);
      expect((await exec(containerId, 'cat /keep/me.txt')).stdout).toBe('still here\n');
    };
    await refused();
    // A stopped container still holds it: it is the removal that lets go.
    await d.cri.runtime.StopContainer({ containerId, timeout: '0' });
    const err = await d.cri.image.RemoveImage({ image: { image: id } }).then(() => undefined, (e: { code: number }) => e);
    expect(err?.code).toBe(status.FAILED_PRECONDITION);

    // The hold is in the container record: a restarted daemon refuses just the same.
    await d.stop();
    d = await startDaemon({ dir: d.dir });
    const again = await d.cri.image.RemoveImage({ image: { image: ref } }).then(() => undefined, (e: { code: number; details: string }) => e);
    expect(again?.code).toBe(status.FAILED_PRECONDITION);
    expect(again!.details).toContain(containerId);
    expect(mountsUnder(join(d.state, 'containers', containerId, 'image-volumes')).length).toBe(2);

    await d.cri.runtime.RemoveContainer({ containerId });
    expectNothingLeft();
    await d.cri.image.RemoveImage({ image: { image: ref } });
    expect((await d.cri.image.ImageStatus({ image: { image: id } })).image).toBeNull();
    // Its layer went with it (gc no longer keeps it for the volume).
    expect(readdirSync(join(d.root, 'content', 'sha256'))).not.toContain(victim.layers[0]!.digest.slice(7));
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
