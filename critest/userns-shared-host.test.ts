// A user-namespaced pod on a node whose mounts are shared, as systemd makes every mount. This
// machine's mounts are private, so the daemon's root and state live on a shared tmpfs of the
// test's own: its rootfs overlays are then shared mounts, as they are under /var/lib on a node.
// crib-runtime clones the rootfs as host root before the container joins its user namespace;
// that clone must not stay a peer of the daemon's overlay (runtime: crib_rootfs_clone).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const HOST_BASE = 1_703_936; // 26 * 65536: far from the test machine's real users
const MAPS = [{ containerId: 0, hostId: HOST_BASE, length: 65536 }];
const NAMESPACES = { network: 'POD', pid: 'CONTAINER', ipc: 'POD', usernsOptions: { mode: 'POD', uids: MAPS, gids: MAPS } };

describe('user-namespaced pods on a node whose mounts are shared', () => {
  let shared = '';
  let logDir = '';
  let registry: TestRegistry;
  let d: TestDaemon;
  let image = '';

  beforeAll(async () => {
    shared = await mkdtemp(join(tmpdir(), 'crib-shared-host-'));
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', shared]);
    execFileSync('mount', ['--make-shared', shared]);
    logDir = await mkdtemp(join(tmpdir(), 'crib-shared-host-logs-'));
    registry = await startRegistry();
    await pushImage(registry, 'library/shared-host', 'latest', buildImage({ layers: [await busyboxRootfsLayer()], config: { Cmd: ['/bin/sh'] } as never }));
    image = `${registry.host}/library/shared-host:latest`;
    d = await startDaemon({ dir: join(shared, 'daemon') });
    await d.cri.image.PullImage({ image: { image } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    // Recursive: whatever a failed test let through is unmounted too.
    execFileSync('umount', ['-R', shared]);
    await rm(shared, { recursive: true });
    await rm(logDir, { recursive: true, force: true });
  });

  it('starts as the mapped root, and none of the container\'s mounts reach the host', async () => {
    const config = podConfigFactory('shared-host', logDir)('p', { linux: { securityContext: { namespaceOptions: NAMESPACES } } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: {
        metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '1000'], logPath: 'c.log',
        linux: { securityContext: { namespaceOptions: NAMESPACES } },
      },
    });
    await d.cri.runtime.StartContainer({ containerId });
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['sh', '-c', 'id -u; grep -c " /proc " /proc/self/mountinfo'], timeout: '10' });
    expect((r.stderr as Buffer).toString()).toBe('');
    expect((r.stdout as Buffer).toString()).toBe('0\n1\n');
    // The container's proc, sysfs, /dev and cgroup mounts stay in its own namespace: on the
    // host, nothing is mounted below its rootfs overlay.
    const rootfs = join(d.state, 'containers', containerId, 'bundle', 'rootfs');
    const mountPoints = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
    expect(mountPoints).toContain(rootfs);
    expect(mountPoints.filter((m) => m.startsWith(`${rootfs}/`))).toEqual([]);
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
