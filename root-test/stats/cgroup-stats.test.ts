// readCgroupStats on real cgroups of this host (root: it makes cgroups): v1 hierarchies, and the
// controller-less cgroup2 mounted at /sys/fs/cgroup/unified.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, errnoCode } from '../../src/errors.js';
import { cgroupLayout } from '../../src/stats/cgroup-path.js';
import { readCgroupStats, type CgroupStats } from '../../src/stats/cgroup-stats.js';
import { CpuRateTracker } from '../../src/stats/cpu-rate.js';

const MB = 1_000_000n;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

const unique = () => `crib-stats-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A busybox shell that waits for a line on stdin, then allocates ~20 MB and spins. */
function spawnBurner(): ChildProcess {
  const child = spawn('/bin/busybox', ['sh', '-c',
    'read go; x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do :; done'],
  { stdio: ['pipe', 'ignore', 'ignore'] });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  });
  return child;
}

async function rmdirRetry(dir: string): Promise<void> {
  // A killed task leaves the cgroup a moment after its exit is reported.
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      if (errnoCode(err) !== 'EBUSY' || i > 200) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function makeCgroup(dirs: string[]): Promise<void> {
  for (const d of dirs) {
    await mkdir(d);
    // Registered per dir, so the ones made before a failure are still removed.
    cleanups.unshift(() => rmdirRetry(d));
  }
}

describe('cgroup v1 (this host)', () => {
  it('reads CPU, memory and pids of a busy process moved into a new cgroup', async () => {
    const layout = cgroupLayout({});
    expect(layout.mode).toBe(1);
    const rel = `/${unique()}`;
    const dirs = ['cpu', 'cpuacct', 'memory', 'pids'].map((c) => `/sys/fs/cgroup/${c}${rel}`);
    await makeCgroup(dirs);
    const child = spawnBurner();
    // Move it before it allocates: v1 does not move memory charges with a task.
    for (const d of dirs) await writeFile(`${d}/cgroup.procs`, `${child.pid}\n`);
    child.stdin!.write('go\n');

    const tracker = new CpuRateTracker(200_000_000n);
    const first = await readCgroupStats(layout, rel);
    expect(first.cpu).toBeDefined();
    expect(tracker.rate('c', first.cpu!.usageNs, first.timestamp)).toBeUndefined();
    expect(first.pids!.current).toBeGreaterThanOrEqual(1n);

    const later = await waitFor('CPU usage to grow', async () => {
      const s = await readCgroupStats(layout, rel);
      return s.cpu!.usageNs > first.cpu!.usageNs ? s : undefined;
    });
    expect(BigInt(later.timestamp)).toBeGreaterThan(BigInt(first.timestamp));
    const nanoCores = await waitFor('a CPU rate', async () => {
      const s = await readCgroupStats(layout, rel);
      return tracker.rate('c', s.cpu!.usageNs, s.timestamp);
    });
    expect(nanoCores).toBeGreaterThan(0n);
    expect(nanoCores).toBeLessThan(2_200_000_000n);

    const withMemory: CgroupStats = await waitFor('20 MB to be charged', async () => {
      const s = await readCgroupStats(layout, rel);
      return s.memory!.rssBytes > 15n * MB ? s : undefined;
    });
    const mem = withMemory.memory!;
    expect(mem.usageBytes).toBeGreaterThan(15n * MB);
    expect(mem.workingSetBytes).toBeGreaterThan(15n * MB);
    expect(mem.workingSetBytes).toBeLessThanOrEqual(mem.usageBytes);
    expect(mem.pageFaults).toBeGreaterThan(0n);
    expect(mem.limitBytes).toBeUndefined(); // no limit set: unlimited
    expect(mem.availableBytes).toBeUndefined();
    expect(withMemory.pids!.current).toBeGreaterThanOrEqual(1n);
    expect(withMemory.cpu!.userNs! + withMemory.cpu!.systemNs!).toBeGreaterThan(0n);

    // A limit shows up as limit and available = limit − working set.
    await writeFile(`/sys/fs/cgroup/memory${rel}/memory.limit_in_bytes`, `${200n * MB}`);
    const limited = await readCgroupStats(layout, rel);
    expect(limited.memory!.limitBytes).toBe(199999488n); // rounded down to pages
    expect(limited.memory!.availableBytes).toBe(199999488n - limited.memory!.workingSetBytes);
  });
});

describe('cgroup v2 (this host)', () => {
  it('reads CPU and processes on the controller-less unified mount of this host', async () => {
    const layout = cgroupLayout({ CRIB_CGROUP_ROOT: '/sys/fs/cgroup/unified' });
    expect(layout.mode).toBe(2);
    const rel = `/${unique()}`;
    await makeCgroup([`/sys/fs/cgroup/unified${rel}`]);
    const child = spawnBurner();
    await writeFile(`/sys/fs/cgroup/unified${rel}/cgroup.procs`, `${child.pid}\n`);
    child.stdin!.write('go\n');
    const first = await readCgroupStats(layout, rel);
    // cpu.stat is core accounting, there without the cpu controller; memory.* and pids.* are not.
    expect(first.memory).toBeUndefined();
    // Counted from cgroup.procs: the shell, plus its $(...) children while they run.
    expect(first.pids!.current).toBeGreaterThanOrEqual(1n);
    expect(first.pids!.limit).toBeUndefined();
    const later = await waitFor('CPU usage to grow', async () => {
      const s = await readCgroupStats(layout, rel);
      return s.cpu!.usageNs > first.cpu!.usageNs + 10_000_000n ? s : undefined;
    });
    expect(later.cpu!.userNs! + later.cpu!.systemNs!).toBeGreaterThan(0n);
    expect(later.cpu!.psi?.some).toBeDefined();
    await expect(readCgroupStats(layout, `${rel}-gone`)).rejects.toThrow(NotFoundError);
  });
});
