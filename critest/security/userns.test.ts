// What a user namespace must keep a pod's root from, attacked for real through the CRI. The pod's
// root holds CAP_SYS_ADMIN (and every other capability) in its user namespace; each attack is run
// twice, in a user-namespaced pod and in the same pod without one, so a pass shows the user
// namespace is what stopped it (without it, host root in the container succeeds):
//  - writing a host root-owned file bound read-write into the container (a hostPath volume
//    without id mappings): the mapped root is not the file's owner and has no capability over it;
//  - writing a node-wide sysctl through /proc after remounting /proc/sys read-write (as
//    kernel.core_pattern would run a host-root program on the next crash), which needs
//    CAP_SYS_ADMIN in the host's user namespace;
//  - a root-owned host directory (0700) bound in: unreadable to the mapped root.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, type TestDaemon } from '../../test-support/daemon.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const MAPS = [{ containerId: 0, hostId: 1_703_936, length: 65536 }]; // 26 * 65536
const ALL_CAPS = ['ALL'];

describe('a user-namespaced pod\'s root has no power over the host', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let work: string;
  let image: string;
  const namespaceOptions = (withUserns: boolean) =>
    ({ network: 'POD', pid: 'CONTAINER', ipc: 'POD', ...(withUserns ? { usernsOptions: { mode: 'POD', uids: MAPS, gids: MAPS } } : {}) });
  const podConfig = (name: string, withUserns: boolean) =>
    podConfigFactory('userns-sec', join(work, 'logs'))(name, { linux: { securityContext: { namespaceOptions: namespaceOptions(withUserns) } } });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-userns-sec-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** Run the attack script in a pod with or without a user namespace; its exit code and output. */
  const attack = async (name: string, withUserns: boolean, script: string, mounts: unknown[]) => {
    const config = podConfig(`${name}-${withUserns ? 'userns' : 'host'}`, withUserns);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      sandboxConfig: config,
      config: {
        metadata: { name, attempt: 0 },
        image: { image },
        command: ['/bin/sh', '-c', 'exec sleep 1000'],
        mounts,
        linux: { securityContext: { capabilities: { addCapabilities: ALL_CAPS }, namespaceOptions: namespaceOptions(withUserns) } },
      },
    });
    await d.cri.runtime.StartContainer({ containerId });
    try {
      const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', script], timeout: '10' });
      return { code: r.exitCode as number, out: `${(r.stdout as Buffer).toString()}${(r.stderr as Buffer).toString()}` };
    } finally {
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }
  };

  it('cannot write a host root-owned file or read a root-only dir bound into the container', async () => {
    const vol = join(work, 'vol');
    await mkdir(join(vol, 'secret'), { recursive: true });
    await chmod(join(vol, 'secret'), 0o700);
    await writeFile(join(vol, 'secret', 'key'), 'host secret\n');
    await writeFile(join(vol, 'owned-by-root'), 'original\n', { mode: 0o644 });
    const mounts = [{ containerPath: '/vol', hostPath: vol }];
    const script = 'echo pwned > /vol/owned-by-root; w=$?; cat /vol/secret/key; r=$?; echo "write=$w read=$r"';

    const confined = await attack('hostfile', true, script, mounts);
    expect(confined.out).toMatch(/write=[1-9]\d* read=[1-9]/);
    expect(await readFile(join(vol, 'owned-by-root'), 'utf8')).toBe('original\n');

    // Control: the same container without a user namespace is host root, and succeeds.
    const control = await attack('hostfile', false, script, mounts);
    expect(control.out).toMatch(/host secret\nwrite=0 read=0/);
    expect(await readFile(join(vol, 'owned-by-root'), 'utf8')).toBe('pwned\n');
  });

  it('cannot write a node-wide sysctl through /proc, even after remounting /proc/sys read-write', async () => {
    // The value written is the current one, so the control (which succeeds) changes nothing.
    const script = 'mount -o remount,rw /proc/sys; v=$(cat /proc/sys/kernel/printk_ratelimit); ' +
      'echo "$v" > /proc/sys/kernel/printk_ratelimit; echo "write=$?"';
    const confined = await attack('sysctl', true, script, []);
    expect(confined.out).toMatch(/write=[1-9]/);
    const control = await attack('sysctl', false, script, []);
    expect(control.out).toMatch(/write=0/);
  });
});
