// The container RPCs' own checks, over the real services: SandboxService and ContainerService
// over the fakes of what needs root (test-support/fake-pinns.ts, fake-shm-mounts.ts,
// fake-pod-network.ts, fake-container-runtime.ts, dir-layers.ts) and real record files in temp
// dirs. What the daemon does end to end is tested by critest/.
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContainerService } from '../container/container-service.js';
import { criState } from '../container/container-record.js';
import { FailedPreconditionError } from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import { NO_FEATURES } from '../runtime/runtime-features.js';
import { SandboxService } from '../sandbox/sandbox-service.js';
import { DirLayers } from '../../test-support/dir-layers.js';
import { FakeContainerRuntime } from '../../test-support/fake-container-runtime.js';
import { FakePinns } from '../../test-support/fake-pinns.js';
import { FakePodNetwork } from '../../test-support/fake-pod-network.js';
import { FakeShmMounts } from '../../test-support/fake-shm-mounts.js';
import { criGuards } from './cri-guards.js';
import { DEFAULT_CRI_LIMITS } from './cri-limits.js';
import { containerHandlers } from './container-rpcs.js';
import type { RpcContext } from './rpc.js';

const IMAGE = { id: `sha256:${'a'.repeat(64)}`, chainId: undefined, config: { config: { Cmd: ['sh'] } } };

const podConfig = (name: string) => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
  hostname: name, logDirectory: '', dnsConfig: null, portMappings: [], labels: {}, annotations: {},
  linux: {
    cgroupParent: '', sysctls: {},
    securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '', userNsOptions: null } },
  },
}) as unknown as PodSandboxConfig__Output;

const containerConfig = (name: string) => ({
  metadata: { name, attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '1000'], args: [], logPath: '',
  stdin: false, stdinOnce: false, tty: false,
}) as unknown as ContainerConfig__Output;

const ctx: RpcContext = { signal: new AbortController().signal, deadlineMs: () => undefined };

describe('container RPCs', () => {
  let base: string;
  let rt: FakeContainerRuntime;
  let containers: ContainerService;
  let pods: SandboxService;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-container-rpcs-'));
    rt = new FakeContainerRuntime();
    const layers = new DirLayers(join(base, 'layers'));
    await mkdir(layers.dir);
    const root = join(base, 'root');
    const state = join(base, 'state');
    containers = new ContainerService({
      root, state,
      runtimes: { get: () => rt, find: () => rt, features: () => NO_FEATURES },
      images: { find: async (ref: string) => (ref === 'busybox' ? IMAGE : undefined) },
      snapshots: layers,
    });
    await containers.recover();
    pods = new SandboxService({
      root, state, network: new FakePodNetwork(), handlers: new Set(['crib']), defaultHandler: 'crib', containers,
      namespaces: new FakePinns(), shm: new FakeShmMounts(),
    });
    await pods.recover();
  });

  afterEach(async () => {
    await containers.close();
    await rm(base, { recursive: true, force: true });
  });

  it('StartContainer refuses a container whose pod stopped after its CreateContainer checked it was ready', async () => {
    const handlers = containerHandlers(containers, pods, criGuards(DEFAULT_CRI_LIMITS, pods, containers));
    const live = await pods.run(podConfig('live'), '', ctx.signal);
    const stopping = await pods.run(podConfig('stopping'), '', ctx.signal);
    // A CreateContainer that checked its pod was ready, and made the container only once a
    // StopPodSandbox of that pod had stopped the pod's containers (this one not among them yet)
    // and released its namespaces.
    const readyRecord = pods.get(stopping);
    await pods.stop(stopping);
    const late = await containers.create(readyRecord, containerConfig('late'), ctx.signal);
    const err = await handlers.StartContainer!({ containerId: late }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe(`StartContainer: container ${late} cannot start: its pod sandbox ${stopping} is not ready (state notready)`);
    // Nothing reached the runtime: it would have joined namespaces that are no longer pinned.
    expect(rt.calls).toEqual([]);
    expect(criState(containers.get(late))).toBe('CONTAINER_CREATED');

    // In a ready pod, the same call starts it.
    const started = await containers.create(pods.get(live), containerConfig('main'), ctx.signal);
    await handlers.StartContainer!({ containerId: started }, ctx);
    expect(rt.calls).toEqual([`create ${started}`, `watch ${started}`, `start ${started}`]);
    expect(criState(containers.get(started))).toBe('CONTAINER_RUNNING');
  });
});
