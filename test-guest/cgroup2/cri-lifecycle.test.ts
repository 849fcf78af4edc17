// A container's cgroup from birth to removal on cgroup v2: where it is made (cgroupfs and
// systemd-style parents, as kubelet's two drivers name them), the cgroup namespace that shows the
// container its own cgroup as "/", the controllers delegated on the way down, and nothing left
// behind once kubelet removes the container and its pod.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CGROUP_ROOT, MiB, allCgroups, cgroupFile, guest, waitFor, type Guest } from '../support.js';

const WANTED = ['cpu', 'memory', 'pids', 'io', 'cpuset', 'hugetlb'];

describe('container cgroups: placement, namespace, cleanup', () => {
  let g: Guest;
  let before: string[];

  beforeAll(() => {
    g = guest('lifecycle');
    before = allCgroups();
  });
  afterAll(async () => {
    await g?.cleanup();
  });

  it('shows the container its own cgroup as "/" through a cgroup namespace, read-only', async () => {
    const pod = await g.runPod('cgns');
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'ns', 'exec sleep 1000');
    const dir = await g.cgroupDir(id);
    const r = await g.exec(id, [
      'cat /proc/self/cgroup', 'grep " /sys/fs/cgroup " /proc/self/mountinfo',
      'cat /sys/fs/cgroup/cgroup.procs | wc -l', 'mkdir /sys/fs/cgroup/x 2>/dev/null || echo read-only',
    ].join('; '));
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('0::/');
    expect(lines[1]).toMatch(/ \/sys\/fs\/cgroup ro,.* - cgroup2 /);
    // The container's init and this exec'd shell pipeline: all in the container's cgroup.
    expect(Number(lines[2])).toBeGreaterThanOrEqual(2);
    expect(lines[3]).toBe('read-only');
    // An exec'd process joins the container's cgroup (and namespace).
    expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(1);
    expect(dir).toBe(join(CGROUP_ROOT, `/crib/crib-${id}`));
    await g.cri.runtime.RemovePodSandbox({ podSandboxId: pod.podSandboxId });
  });

  it('places a container under a systemd-style parent as kubelet\'s systemd driver names it', async () => {
    const uid = `u${process.pid}`;
    const slice = `kubepods-burstable-pod${uid}.slice`;
    const pod = await g.runPod('systemd', { linux: { cgroupParent: slice } });
    const id = await g.runContainer(pod.podSandboxId, pod.config, 'sd', 'exec sleep 1000', {
      linux: { resources: { memoryLimitInBytes: String(48 * MiB), cpuQuota: '30000', cpuPeriod: '100000' } },
    });
    const dir = await g.cgroupDir(id);
    const parents = ['kubepods.slice', 'kubepods.slice/kubepods-burstable.slice', `kubepods.slice/kubepods-burstable.slice/${slice}`];
    expect(dir).toBe(join(CGROUP_ROOT, parents[2]!, `crib-${id}.scope`));
    expect(cgroupFile(dir, 'memory.max')).toBe(String(48 * MiB));
    expect(cgroupFile(dir, 'cpu.max')).toBe('30000 100000');
    // Each ancestor delegates the controllers crib sets limits through; the leaf delegates none.
    for (const p of ['', ...parents]) {
      const enabled = cgroupFile(join(CGROUP_ROOT, p), 'cgroup.subtree_control').split(/\s+/);
      for (const c of WANTED) expect(enabled, `${p || '/'} delegates ${c}`).toContain(c);
    }
    expect(cgroupFile(dir, 'cgroup.subtree_control')).toBe('');
    // Pod stats come from the pod's slice.
    const ps = (await g.cri.runtime.PodSandboxStats({ podSandboxId: pod.podSandboxId })).stats;
    expect(Number(ps.linux.memory.usageBytes.value)).toBeGreaterThan(0);
    await g.cri.runtime.RemovePodSandbox({ podSandboxId: pod.podSandboxId });
    expect(existsSync(dir)).toBe(false);
  });

  it('removes each container\'s cgroup with it, and leaves nothing behind', async () => {
    const pod = await g.runPod('cleanup', { linux: { cgroupParent: `/cleanup-${process.pid}` } });
    const a = await g.runContainer(pod.podSandboxId, pod.config, 'a', 'sleep 1000 & sleep 1000 & exec sleep 1000');
    const b = await g.runContainer(pod.podSandboxId, pod.config, 'b', 'exit 0');
    const da = await g.cgroupDir(a);
    const db = join(CGROUP_ROOT, `/cleanup-${process.pid}/crib-${b}`);
    await g.waitExited(b);
    await g.cri.runtime.RemoveContainer({ containerId: b });
    // RemoveContainer answers once the removal is marked; the runtime delete that removes the
    // cgroup follows in the background, promptly.
    await waitFor(`cgroup ${db} to be removed`, () => !existsSync(db), 15_000);
    // a's init has two children: StopContainer kills them all; RemoveContainer removes the cgroup.
    expect(cgroupFile(da, 'cgroup.procs').split('\n')).toHaveLength(3);
    await g.cri.runtime.StopContainer({ containerId: a, timeout: '1' });
    // The runtime's delete of an exited container runs at its exit, in the background, and may
    // have removed the cgroup already (ENOENT), or remove it while the file is read (ENODEV): a
    // cgroup that is gone holds no process either.
    const procs = () => {
      try {
        return cgroupFile(da, 'cgroup.procs');
      } catch (err) {
        if (['ENOENT', 'ENODEV'].includes((err as NodeJS.ErrnoException).code ?? '')) return '';
        throw err;
      }
    };
    expect(procs()).toBe('');
    await g.cri.runtime.RemoveContainer({ containerId: a });
    await waitFor(`cgroup ${da} to be removed`, () => !existsSync(da), 15_000);
    await g.cri.runtime.RemovePodSandbox({ podSandboxId: pod.podSandboxId });
    expect(allCgroups().filter((c) => c.startsWith(`/cleanup-${process.pid}/`))).toEqual([]);
  });

  it('leaves no cgroup of this file\'s containers behind', () => {
    // Only the pods' parents remain (kubelet's to remove; cleanup() does it here), and "/crib",
    // the default parent shared by every pod without one.
    const parents = ['/kubepods.slice', `/cleanup-${process.pid}`];
    expect(allCgroups().filter((c) => !before.includes(c) && c !== '/crib' && !parents.some((p) => c.startsWith(p)))).toEqual([]);
  });
});
