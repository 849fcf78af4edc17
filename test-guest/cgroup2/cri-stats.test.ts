// Container and pod stats, and the cAdvisor-style metrics, read from cgroup v2 files: cpu.stat,
// memory.current/stat/events/max, memory.swap.*, pids.current and the *.pressure (PSI) files.
// Each figure is compared with the file the kernel keeps for the container's cgroup, read
// around the RPC (counters only grow, so before <= reported <= after).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CGROUP_ROOT, MiB, cgroupFile, flatKeyed, guest, waitFor, type Guest } from '../support.js';

// A pod cgroup as kubelet's cgroupfs driver names it; kubelet creates it, crib's runtime makes
// it on the way to the container's.
const POD_PARENT = `/kubepods/burstable/pod-stats-${process.pid}`;

const num = (v: { value: string } | null | undefined) => Number(v?.value ?? NaN);

describe('stats and metrics from cgroup v2 files', () => {
  let g: Guest;
  let pod: { podSandboxId: string; config: Record<string, any> };
  let id = '';
  let dir = '';

  beforeAll(async () => {
    g = guest('stats');
    pod = await g.runPod('stats', { linux: { cgroupParent: POD_PARENT } });
    // Busy under a quarter-CPU quota (throttled, CPU pressure), holding ~20 MB of memory in
    // /dev/shm (charged to the container's cgroup by the writer, and still once it has exited).
    id = await g.runContainer(pod.podSandboxId, pod.config, 'busy',
      'head -c 20000000 /dev/zero > /dev/shm/blob; while :; do :; done', {
        linux: { resources: { cpuQuota: '25000', cpuPeriod: '100000', memoryLimitInBytes: String(256 * MiB) } },
      });
    dir = await g.cgroupDir(id);
    // Settled: head is gone, only the looping shell is left, memory.current stops moving.
    let last = 0;
    await waitFor('the container to hold its memory', async () => {
      const now = Number(cgroupFile(dir, 'memory.current'));
      const settled = now > 20_000_000 && cgroupFile(dir, 'pids.current') === '1' && Math.abs(now - last) < MiB;
      last = now;
      if (!settled) await new Promise((r) => setTimeout(r, 500));
      return settled;
    }, 120_000);
  });
  afterAll(async () => {
    await g?.cleanup();
  });

  it('ContainerStats: CPU, memory, swap and PSI from the container\'s cgroup', async () => {
    expect(dir).toBe(join(CGROUP_ROOT, POD_PARENT, `crib-${id}`));
    // Each figure is read from the files just before and just after the RPC: it must lie
    // between the two.
    const read = () => ({
      cpu: flatKeyed(dir, 'cpu.stat').usage_usec! * 1000,
      current: Number(cgroupFile(dir, 'memory.current')),
      anon: flatKeyed(dir, 'memory.stat').anon!,
    });
    const within = (v: number, a: number, b: number) => {
      expect(v).toBeGreaterThanOrEqual(Math.min(a, b));
      expect(v).toBeLessThanOrEqual(Math.max(a, b));
    };
    const before = read();
    const { stats } = await g.cri.runtime.ContainerStats({ containerId: id });
    const after = read();
    expect(stats.attributes.id).toBe(id);
    within(num(stats.cpu.usageCoreNanoSeconds), before.cpu, after.cpu);
    const usage = num(stats.memory.usageBytes);
    within(usage, before.current, after.current);
    within(num(stats.memory.rssBytes), before.anon, after.anon);
    expect(num(stats.memory.workingSetBytes)).toBeLessThanOrEqual(usage);
    expect(num(stats.memory.workingSetBytes)).toBeGreaterThan(20_000_000);
    expect(num(stats.memory.availableBytes)).toBe(256 * MiB - num(stats.memory.workingSetBytes));
    expect(num(stats.memory.pageFaults)).toBeGreaterThan(0);

    // No swap device in the guest: usage 0, and the container's swap limit is 0 (no swap).
    expect(num(stats.swap.swapUsageBytes)).toBe(Number(cgroupFile(dir, 'memory.swap.current')));
    expect(cgroupFile(dir, 'memory.swap.max')).toBe('0');
    expect(num(stats.swap.swapAvailableBytes)).toBe(0);

    // PSI: a busy loop under a quota waits for CPU ("some" grows); totals are µs in the file,
    // ns in the CRI.
    const cpuPsi = await waitFor('CPU pressure', async () => {
      const s = (await g.cri.runtime.ContainerStats({ containerId: id })).stats;
      return Number(s.cpu.psi?.Some?.Total ?? 0) > 0 ? s.cpu.psi : undefined;
    }, 60_000);
    const someTotalUs = Number(/^some .*total=(\d+)$/m.exec(cgroupFile(dir, 'cpu.pressure'))![1]);
    expect(Number(cpuPsi.Some.Total)).toBeLessThanOrEqual(someTotalUs * 1000);
    expect(cpuPsi.Full).not.toBeNull();
    expect(stats.memory.psi?.Some).toBeDefined();
    expect(stats.io?.psi?.Some).toBeDefined();
  });

  it('ListContainerStats gives a CPU rate; PodSandboxStats reads the pod\'s own cgroup', async () => {
    await g.cri.runtime.ListContainerStats({ filter: { podSandboxId: pod.podSandboxId } });
    await new Promise((r) => setTimeout(r, 1500));
    const { stats } = await g.cri.runtime.ListContainerStats({ filter: { podSandboxId: pod.podSandboxId } });
    expect(stats.map((s: any) => s.attributes.id)).toEqual([id]);
    // The quota caps it at a quarter of a CPU (plus slack for the emulated guest's clock).
    const rate = num(stats[0].cpu.usageNanoCores);
    expect(rate).toBeGreaterThan(10_000_000);
    expect(rate).toBeLessThan(400_000_000);

    const podDir = join(CGROUP_ROOT, POD_PARENT);
    const podUsageBefore = flatKeyed(podDir, 'cpu.stat').usage_usec! * 1000;
    const ps = (await g.cri.runtime.PodSandboxStats({ podSandboxId: pod.podSandboxId })).stats;
    expect(num(ps.linux.cpu.usageCoreNanoSeconds)).toBeGreaterThanOrEqual(podUsageBefore);
    expect(num(ps.linux.memory.usageBytes)).toBeGreaterThan(20_000_000);
    // pids.current of the pod cgroup: the container's one looping shell.
    expect(num(ps.linux.process.processCount)).toBe(Number(cgroupFile(podDir, 'pids.current')));
    expect(ps.linux.containers.map((c: any) => c.attributes.id)).toEqual([id]);
    expect(ps.linux.cpu.psi?.Some).toBeDefined();
  });

  it('ListMetricDescriptors and ListPodSandboxMetrics carry the v2 figures', async () => {
    const { descriptors } = await g.cri.runtime.ListMetricDescriptors({});
    const names = descriptors.map((d: any) => d.name);
    for (const n of ['container_cpu_cfs_throttled_periods_total', 'container_memory_working_set_bytes',
      'container_spec_memory_limit_bytes', 'container_oom_events_total', 'container_processes']) {
      expect(names).toContain(n);
    }
    const { podMetrics } = await g.cri.runtime.ListPodSandboxMetrics({});
    const mine = podMetrics.find((m: any) => m.podSandboxId === pod.podSandboxId);
    const ctr = mine.containerMetrics.find((c: any) => c.containerId === id);
    const metric = (name: string) => ctr.metrics.find((m: any) => m.name === name);
    expect(num(metric('container_spec_memory_limit_bytes').value)).toBe(Number(cgroupFile(dir, 'memory.max')));
    const throttled = num(metric('container_cpu_cfs_throttled_periods_total').value);
    expect(throttled).toBeGreaterThan(0);
    expect(throttled).toBeLessThanOrEqual(flatKeyed(dir, 'cpu.stat').nr_throttled!);
    expect(num(metric('container_oom_events_total').value)).toBe(flatKeyed(dir, 'memory.events').oom_kill);
    expect(num(metric('container_processes').value)).toBe(Number(cgroupFile(dir, 'pids.current')));
    // The cgroup path label ("id") is the container's real cgroup.
    expect(metric('container_memory_working_set_bytes').labelValues[1]).toBe(`${POD_PARENT}/crib-${id}`);
    // Pod-level entries come from the pod cgroup.
    const podMem = mine.metrics.find((m: any) => m.name === 'container_memory_usage_bytes');
    expect(num(podMem.value)).toBeGreaterThan(20_000_000);
  });
});
