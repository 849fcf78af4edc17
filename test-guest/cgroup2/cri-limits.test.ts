// Resource limits through the CRI on a pure cgroup v2 node: what kubelet sends in
// LinuxContainerResources must land in the unified files of the container's cgroup — and the
// kernel must enforce it. Each limit is checked both ways: the file's value, read from the
// cgroup the kernel put the container in, and the behaviour (throttling, a refused fork, an
// allocation that fails).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, cgroupFile, flatKeyed, guest, waitFor, type Guest } from '../support.js';

const run = promisify(execFile);

describe('CRI resource limits on cgroup v2', () => {
  let g: Guest;
  let pod: { podSandboxId: string; config: Record<string, any> };

  beforeAll(async () => {
    g = guest('limits');
    pod = await g.runPod('limits');
  });
  afterAll(async () => {
    await g?.cleanup();
  });

  it('writes cpu.max from the CFS quota and period, cpu.weight from shares, and the kernel throttles', async () => {
    // kubelet for "cpu: 500m": shares 512, quota 50000 per 100000 µs period.
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'cpu', 'while :; do :; done', {
      linux: { resources: { cpuShares: '512', cpuQuota: '50000', cpuPeriod: '100000' } },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'cpu.max')).toBe('50000 100000');
    // kubelet's (and runc's) map of shares 2..262144 onto weight 1..10000: 1 + (512-2)*9999/262142.
    expect(cgroupFile(dir, 'cpu.weight')).toBe('20');
    // A busy loop under a half-CPU quota gets throttled within a few periods.
    const stat = await waitFor('cpu.max throttling', () => {
      const s = flatKeyed(dir, 'cpu.stat');
      return s.nr_throttled! > 0 && s.throttled_usec! > 0 ? s : undefined;
    }, 60_000);
    expect(stat.nr_periods).toBeGreaterThan(0);
  });

  it('enforces memory.max and reports the limit in the container\'s own cgroup view', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'mem', 'exec sleep 1000', {
      linux: { resources: { memoryLimitInBytes: String(32 * MiB) } },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'memory.max')).toBe(String(32 * MiB));
    // The container sees its own cgroup at /sys/fs/cgroup (cgroup namespace).
    expect((await g.exec(id, 'cat /sys/fs/cgroup/memory.max')).stdout.trim()).toBe(String(32 * MiB));
    // dd's buffer is its block size, every page of it written by the read from /dev/zero:
    // 16 MiB fits under the limit; 64 MiB does not, and dd (not the container) is OOM-killed.
    const small = await g.exec(id, 'dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null && echo fits');
    expect(small.stdout).toContain('fits');
    const big = await g.exec(id, 'dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo "dd exit $?"');
    expect(big.stdout.trim()).toBe('dd exit 137');
    expect(flatKeyed(dir, 'memory.events').oom_kill).toBeGreaterThanOrEqual(1);
    expect((await g.cri.runtime.ContainerStatus({ containerId: id })).status.state).toBe('CONTAINER_RUNNING');
  });

  it('sets memory.swap.max from the swap limit, and the kernel holds each container to it', async () => {
    // Swap for the test: a swap file on the guest's ext4 disk.
    const swapDir = mkdtempSync(join(tmpdir(), 'crib-swap-'));
    const swapFile = join(swapDir, 'swap');
    await run('dd', ['if=/dev/zero', `of=${swapFile}`, 'bs=1M', 'count=128']);
    await run('chmod', ['600', swapFile]);
    await run('mkswap', [swapFile]);
    await run('swapon', [swapFile]);
    try {
      // CRI's swap limit counts memory+swap; v2's memory.swap.max is swap alone: 96 - 32 MiB.
      const id = await g.runContainer(pod.podSandboxId, pod.config, 'swap', 'exec sleep 1000', {
        linux: { resources: { memoryLimitInBytes: String(32 * MiB), memorySwapLimitInBytes: String(96 * MiB) } },
      });
      const dir = await g.cgroupDir(id);
      expect(cgroupFile(dir, 'memory.max')).toBe(String(32 * MiB));
      expect(cgroupFile(dir, 'memory.swap.max')).toBe(String(64 * MiB));
      // No swap limit given: Docker's rule, memory+swap = memory, so no swap at all.
      const none = await g.runContainer(pod.podSandboxId, pod.config, 'noswap', 'exec sleep 1000', {
        linux: { resources: { memoryLimitInBytes: String(32 * MiB) } },
      });
      expect(cgroupFile(await g.cgroupDir(none), 'memory.swap.max')).toBe('0');
      // 48 MiB of anonymous memory fits in 32 MiB plus swap, and not in 32 MiB alone.
      const hog = 'dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null; echo "dd exit $?"';
      expect((await g.exec(id, hog)).stdout.trim()).toBe('dd exit 0');
      expect((await g.exec(none, hog)).stdout.trim()).toBe('dd exit 137');
    } finally {
      await run('swapoff', [swapFile]);
      rmSync(swapDir, { recursive: true, force: true });
    }
  });

  it('limits pids.max (unified) and the kernel refuses the fork past it', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'pids', 'exec sleep 1000', {
      linux: { resources: { unified: { 'pids.max': '4' } } },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'pids.max')).toBe('4');
    // sleep (1) + sh (2) + 3 background sleeps: the last fork fails.
    const r = await g.exec(id, 'for i in 1 2 3; do sleep 100 & done; wait', 30);
    expect(r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    expect(flatKeyed(dir, 'pids.events').max).toBeGreaterThanOrEqual(1);
  });

  it('pins the container to a cpuset', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'cpuset', 'exec sleep 1000', {
      linux: { resources: { cpusetCpus: '1', cpusetMems: '0' } },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'cpuset.cpus')).toBe('1');
    expect(cgroupFile(dir, 'cpuset.mems')).toBe('0');
    expect(cgroupFile(dir, 'cpuset.cpus.effective')).toBe('1');
    const status = (await g.exec(id, 'grep Cpus_allowed_list /proc/self/status')).stdout;
    expect(status).toMatch(/Cpus_allowed_list:\s+1$/m);
  });

  it('writes the unified map verbatim, io.weight among it, over translated values', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'unified', 'exec sleep 1000', {
      linux: {
        resources: {
          memoryLimitInBytes: String(64 * MiB),
          unified: { 'memory.high': String(48 * MiB), 'memory.max': String(40 * MiB), 'io.weight': 'default 250', 'memory.oom.group': '1' },
        },
      },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'memory.high')).toBe(String(48 * MiB));
    expect(cgroupFile(dir, 'memory.max')).toBe(String(40 * MiB));
    expect(cgroupFile(dir, 'io.weight')).toBe('default 250');
    expect(cgroupFile(dir, 'memory.oom.group')).toBe('1');
  });

  it('limits hugetlb.2MB.max and the kernel refuses huge pages past it', async () => {
    // Huge pages for the test: reserved in the guest, a hugetlbfs mounted there and handed to
    // the container as a volume. Pages are charged to the cgroup of the task that allocates them.
    const nr = '/proc/sys/vm/nr_hugepages';
    const before = readFileSync(nr, 'utf8').trim();
    const fs = mkdtempSync(join(tmpdir(), 'crib-hugetlbfs-'));
    writeFileSync(nr, '8');
    await run('mount', ['-t', 'hugetlbfs', '-o', 'pagesize=2M', 'none', fs]);
    try {
      expect(Number(readFileSync(nr, 'utf8'))).toBeGreaterThanOrEqual(4);
      const id = await g.runContainer(pod.podSandboxId, pod.config, 'huge', 'exec sleep 1000', {
        linux: { resources: { hugepageLimits: [{ pageSize: '2MB', limit: String(4 * MiB) }] } },
        mounts: [{ containerPath: '/huge', hostPath: fs }],
      });
      const dir = await g.cgroupDir(id);
      expect(cgroupFile(dir, 'hugetlb.2MB.max')).toBe(String(4 * MiB));
      // Two pages fit the 4 MiB limit; a third is charged past it and refused.
      const fits = await g.exec(id, 'fallocate -l 4194304 /huge/a && echo ok');
      expect(fits.stdout).toContain('ok');
      expect(cgroupFile(dir, 'hugetlb.2MB.current')).toBe(String(4 * MiB));
      const over = await g.exec(id, 'fallocate -l 2097152 /huge/b && echo ok');
      expect(over.stdout).not.toContain('ok');
      expect(flatKeyed(dir, 'hugetlb.2MB.events').max).toBeGreaterThanOrEqual(1);
      await g.cri.runtime.RemoveContainer({ containerId: id });
    } finally {
      await run('umount', [fs]);
      rmSync(fs, { recursive: true, force: true });
      writeFileSync(nr, before);
    }
  });

  it('UpdateContainerResources changes the limits of a running container', async () => {
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'upd', 'exec sleep 1000', {
      linux: { resources: { memoryLimitInBytes: String(64 * MiB), cpuShares: '1024', cpuQuota: '20000', cpuPeriod: '100000' } },
    });
    const dir = await g.cgroupDir(id);
    expect(cgroupFile(dir, 'memory.max')).toBe(String(64 * MiB));
    await g.cri.runtime.UpdateContainerResources({
      containerId: id,
      linux: { memoryLimitInBytes: String(96 * MiB), cpuShares: '2048', cpuQuota: '150000', cpuPeriod: '100000', unified: { 'memory.high': String(80 * MiB) } },
    });
    expect(cgroupFile(dir, 'memory.max')).toBe(String(96 * MiB));
    expect(cgroupFile(dir, 'cpu.max')).toBe('150000 100000');
    expect(cgroupFile(dir, 'cpu.weight')).toBe('79'); // 1 + (2048-2)*9999/262142
    expect(cgroupFile(dir, 'memory.high')).toBe(String(80 * MiB));
    expect(existsSync(dir)).toBe(true);
  });
});
