// The two holes a mutation run found: nothing checked that a CreateContainer failing late (after
// its writable layer is mounted) leaves nothing behind, nor that a created container's record is
// on disk when CreateContainer answers (a restart would otherwise roll it back). Both through a
// real daemon, with the node itself (test-support/node-truth.ts) as the judge.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { checkNodeTruth, knownFromDisk, mergeKnown } from '../test-support/node-truth.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

describe('rollback and persistence of CreateContainer', () => {
  let registry: TestRegistry;
  let work: string;
  let image: string;
  let d: TestDaemon;
  let podConfig: ReturnType<typeof podConfigFactory>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-rollback-'));
    podConfig = podConfigFactory('rollback', join(work, 'logs'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ dir: join(work, 'daemon'), startTimeoutMs: 60_000 });
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);

  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const containerFiles = () => ({
    records: list(join(d.root, 'containers')).filter((f) => f.endsWith('.json')),
    dirs: list(join(d.state, 'containers')),
    // `.trash` is where removed layers are deleted from, not a layer.
    layers: list(join(d.root, 'snapshots', 'active')).filter((n) => n !== '.trash'),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(join(d.state, 'containers'))),
  });

  it('a StartContainer the runtime\'s create refuses leaves the container created with nothing running, and removable without a trace', async () => {
    const config = podConfig('late-failure');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const before = containerFiles();
    // crib-runtime create looks the executable up inside the mounted rootfs: it is the runtime's
    // create that fails, which runs at StartContainer (as in containerd), after the writable
    // layer, the mount and the bundle exist.
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['/no/such/binary'] },
    });
    await expect(d.cri.runtime.StartContainer({ containerId }))
      .rejects.toThrow(/create failed: crib-runtime: .*\/no\/such\/binary.*No such file or directory/);
    await waitFor('the undo in the log', () => d.output().includes('runtime create or start failed; undoing it'));
    // No monitor, no runtime state, no cgroup: CREATED and nothing of it runs.
    expect((await d.cri.runtime.ContainerStatus({ containerId })).status.state).toBe('CONTAINER_CREATED');
    expect(existsSync(join(d.state, 'runtime', containerId))).toBe(false);
    expect(await checkNodeTruth(d)).toEqual([]);
    // A retry fails the same way, and leaves the same.
    await expect(d.cri.runtime.StartContainer({ containerId })).rejects.toThrow(/no\/such\/binary/);
    expect(await checkNodeTruth(d)).toEqual([]);
    await d.cri.runtime.RemoveContainer({ containerId });
    await waitFor('the removal to finish', () => JSON.stringify(containerFiles()) === JSON.stringify(before));
    expect(containerFiles()).toEqual(before);
    expect(before).toEqual({ records: [], dirs: [], layers: [], mounts: [] });
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
    expect(await checkNodeTruth(d)).toEqual([]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect(containerFiles()).toEqual(before);
  });

  it('a created, never started container survives a kill -9 of the daemon, then starts and runs', async () => {
    const config = podConfig('survivor');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', 'echo running; exec sleep 100000'], logPath: 'c.log' },
    });
    const known = knownFromDisk(d);
    // No graceful shutdown: what CreateContainer answered must already be on disk.
    await d.stop('SIGKILL');
    d = await startDaemon({ dir: d.dir, startTimeoutMs: 60_000 });
    const st = (await d.cri.runtime.ContainerStatus({ containerId })).status;
    expect(st.state).toBe('CONTAINER_CREATED');
    expect(await checkNodeTruth(d, known)).toEqual([]);
    await d.cri.runtime.StartContainer({ containerId });
    expect((await d.cri.runtime.ContainerStatus({ containerId })).status.state).toBe('CONTAINER_RUNNING');
    const logFile = join(config.logDirectory, 'c.log');
    await waitFor('its output', () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('running'));
    expect(await checkNodeTruth(d, known)).toEqual([]);
    await d.cri.runtime.StopPodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    expect(await checkNodeTruth(d, mergeKnown(known, knownFromDisk(d)))).toEqual([]);
  });
});
