// The budget's estimate must bound the real encoded size of what the lists carry: checked here
// against the CRI proto's own encoder on large and small objects.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import { ResourceExhaustedError } from '../errors.js';
import { criProto } from './cri-proto.js';
import { ListedBudget, containerListedBytes, podListedBytes, type ListedObject } from './listed-size.js';

const svc = () => criProto().runtime.v1.RuntimeService.service;
const id = (n: number) => n.toString(16).padStart(64, '0');

function pod(annotationBytes: number): PodSandboxConfig__Output {
  const m = svc().RunPodSandbox;
  return m.requestDeserialize(m.requestSerialize({ config: {
    metadata: { name: 'web-'.padEnd(200, 'x'), namespace: 'default', uid: 'u'.repeat(36), attempt: 3 },
    labels: { app: 'web', 'io.kubernetes.pod.name': 'web' },
    annotations: { 'example.com/a': 'a'.repeat(annotationBytes), b: 'c' },
  } })).config!;
}

function container(): ContainerConfig__Output {
  const m = svc().CreateContainer;
  return m.requestDeserialize(m.requestSerialize({ podSandboxId: 'p', config: {
    metadata: { name: 'app', attempt: 1 },
    image: { image: 'registry.example.com/team/app:1.2.3', userSpecifiedImage: 'app:1.2.3', annotations: { x: 'y' } },
    labels: { 'io.kubernetes.container.name': 'app' },
    annotations: { 'io.kubernetes.container.hash': 'a'.repeat(1000) },
    mounts: Array.from({ length: 20 }, (_, i) => ({ containerPath: `/data/${i}`, hostPath: `/var/lib/kubelet/pods/x/volumes/${i}`, uidMappings: [{ hostId: 1, containerId: 0, length: 1 }] })),
    logPath: 'app/1.log',
    linux: { resources: { cpuShares: '2', memoryLimitInBytes: '1000000', unified: { 'memory.high': '900000' } }, securityContext: { supplementalGroups: ['1', '2'] } },
  } })).config!;
}

describe('listed size estimate', () => {
  it('bounds what a pod adds to ListPodSandbox and ListPodSandboxStats', () => {
    for (const size of [0, 1000, 256 * 1024]) {
      const config = pod(size);
      const item = { id: id(1), metadata: config.metadata, state: 'SANDBOX_READY' as const, createdAt: '1700000000000000000',
        labels: config.labels, annotations: config.annotations, runtimeHandler: 'runc' };
      const list = svc().ListPodSandbox.responseSerialize({ items: [item] }).length;
      const stats = svc().ListPodSandboxStats.responseSerialize({ stats: [{
        attributes: { id: id(1), metadata: config.metadata, labels: config.labels, annotations: config.annotations },
        linux: {
          cpu: { timestamp: '1700000000000000000', usageCoreNanoSeconds: { value: '99999999999999' }, usageNanoCores: { value: '99999999999' } },
          memory: { timestamp: '1700000000000000000', workingSetBytes: { value: '99999999999' }, availableBytes: { value: '99999999999' },
            usageBytes: { value: '99999999999' }, rssBytes: { value: '99999999999' }, pageFaults: { value: '9999999' }, majorPageFaults: { value: '99999' } },
          network: { timestamp: '1700000000000000000', defaultInterface: { name: 'eth0', rxBytes: { value: '9999999999' } },
            interfaces: Array.from({ length: 16 }, (_, i) => ({ name: `veth-interface${i}`, rxBytes: { value: '9999999999999' }, rxErrors: { value: '99999' }, txBytes: { value: '9999999999999' }, txErrors: { value: '99999' } })) },
          process: { timestamp: '1700000000000000000', processCount: { value: '99999' } },
        },
      }] }).length;
      expect(podListedBytes(config, 'runc')).toBeGreaterThanOrEqual(Math.max(list, stats));
      // ...without overcharging by much: the budget is what lets kubelet run pods at all.
      expect(podListedBytes(config, 'runc')).toBeLessThan(Math.max(list, stats) + 2048);
    }
  });

  it('bounds what a container adds to ListContainers and to the statuses in PodSandboxStatus', () => {
    const config = container();
    const logPath = `/var/log/pods/default_web_uid/${config.logPath}`;
    const status = svc().PodSandboxStatus.responseSerialize({ containersStatuses: [{
      id: id(2), metadata: config.metadata, state: 'CONTAINER_EXITED', createdAt: '1700000000000000000', startedAt: '1700000000000000000',
      finishedAt: '1700000000000000000', exitCode: 137, image: { image: config.image!.image, annotations: config.image!.annotations, userSpecifiedImage: config.image!.userSpecifiedImage },
      imageRef: `sha256:${'f'.repeat(64)}`, imageId: `sha256:${'f'.repeat(64)}`, reason: 'OOMKilled', message: '',
      labels: config.labels, annotations: config.annotations, mounts: config.mounts, logPath,
      resources: { linux: config.linux!.resources }, user: { linux: { uid: '65534', gid: '65534', supplementalGroups: ['1', '2'] } },
    }] }).length;
    expect(containerListedBytes(config, logPath)).toBeGreaterThanOrEqual(status);
  });
});

describe('ListedBudget', () => {
  it('refuses a creation that would take every list over the budget, naming the limit', async () => {
    const stored: ListedObject[] = [];
    const budget = new ListedBudget(10_000, () => stored);
    const cfg = {};
    await budget.charge('RunPodSandbox', 'pod', 6000, async () => {
      stored.push({ id: 'a', config: cfg, bytes: () => 6000 });
    });
    expect(budget.used()).toBe(6000);
    const refused = await budget.charge('RunPodSandbox', 'pod', 6000, async () => 'created').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).grpcCode).toBe(status.RESOURCE_EXHAUSTED);
    expect((refused as Error).message).toMatch(/already take 6000 of the 10000 bytes every list must fit in \(limits\.max_listed_bytes\)/);
    // An update that adds nothing is not refused, even over budget (records from before a restart).
    stored.push({ id: 'b', config: cfg, bytes: () => 6000 });
    expect(await budget.charge('UpdateContainerResources', 'container', 0, async () => 'updated')).toBe('updated');
    stored.splice(0);
    expect(await budget.charge('RunPodSandbox', 'pod', 6000, async () => 'created')).toBe('created');
  });

  it('counts creations in flight, so concurrent ones cannot overshoot together', async () => {
    const budget = new ListedBudget(10_000, () => []);
    let release!: () => void;
    const first = budget.charge('RunPodSandbox', 'pod', 6000, () => new Promise<void>((r) => (release = r)));
    await expect(budget.charge('RunPodSandbox', 'pod', 6000, async () => undefined)).rejects.toThrow(ResourceExhaustedError);
    release();
    await first;
    expect(budget.used()).toBe(0);
  });
});
