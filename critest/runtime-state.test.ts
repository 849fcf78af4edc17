// An exited container's runtime state (crib-runtime's state dir, and its cgroup) is deleted when
// its exit is recorded, as containerd's CRI plugin deletes the task when it handles the exit:
// RemoveContainer and RemovePodSandbox then run no runtime process. The daemon runs crib-runtime
// through a wrapper that logs every invocation, so "no runtime process" is counted, not inferred.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { RUNTIME, removeCgroupParent, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { cgroupDir } from '../test-support/node-truth.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

describe('an exited container\'s runtime state goes at its exit', () => {
  let work: string;
  let calls: string;
  let registry: TestRegistry;
  let d: TestDaemon;
  let image: string;
  let podConfig: ReturnType<typeof podConfigFactory>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-runtime-state-'));
    calls = join(work, 'runtime-calls');
    await writeFile(calls, '');
    const wrapper = join(work, 'crib-runtime');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${RUNTIME}' "$@"\n`);
    await chmod(wrapper, 0o755);
    podConfig = podConfigFactory('runtime-state', join(work, 'logs'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ env: { CRIB_RUNTIME_BINARY: wrapper } });
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
    await removeCgroupParent('crib');
  });

  const runtimeCalls = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  const stateDir = (id: string) => join(d.state, 'runtime', id);
  const run = async (name: string, script: string) => {
    const config = podConfig(name);
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', script], logPath: 'c.log' },
    });
    await d.cri.runtime.StartContainer({ containerId });
    expect(existsSync(stateDir(containerId))).toBe(true);
    expect(existsSync(cgroupDir('', containerId))).toBe(true);
    return { podSandboxId, containerId };
  };
  /** The exit's deletion ran (once) and left neither state nor cgroup. */
  const deletedAtExit = async (id: string) => {
    await waitFor('the runtime state deleted after the exit', () => !existsSync(stateDir(id)), 10_000);
    expect(existsSync(cgroupDir('', id))).toBe(false);
    expect(runtimeCalls().filter((c) => c.includes(`delete --force ${id}`))).toHaveLength(1);
    // Still EXITED with its status: the record is the daemon's, not the runtime's.
    const { status } = await d.cri.runtime.ContainerStatus({ containerId: id });
    expect(status.state).toBe('CONTAINER_EXITED');
    return status;
  };

  it('a stopped container: deleted before RemoveContainer, which (and the pod\'s removal) then runs no runtime process', async () => {
    const { podSandboxId, containerId } = await run('stopped', 'exec sleep 100000');
    await d.cri.runtime.StopContainer({ containerId, timeout: '0' });
    expect((await deletedAtExit(containerId)).exitCode).toBe(137);
    const before = runtimeCalls();
    await d.cri.runtime.RemoveContainer({ containerId });
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect(runtimeCalls()).toEqual(before);
    expect(existsSync(join(d.state, 'containers', containerId))).toBe(false);
  });

  it('a container that exits by itself: deleted at its exit; the pod\'s removal runs no runtime process', async () => {
    const { podSandboxId, containerId } = await run('exits', 'exit 3');
    expect((await deletedAtExit(containerId)).exitCode).toBe(3);
    const before = runtimeCalls();
    // Without RemoveContainer: the pod's removal removes it.
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect(runtimeCalls()).toEqual(before);
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
  });
});
