import { describe, expect, it } from 'vitest';
import { cgroupV1Mounts, controllerMount } from './cgroup-v1-mounts.js';

const line = (id: number, point: string, fstype: string, superOptions: string) =>
  `${id} 1 0:${id} / ${point} rw,nosuid - ${fstype} ${fstype} ${superOptions}`;

describe('cgroupV1Mounts', () => {
  it('finds the cgroup mounts directly under the root among many other mounts, the last on a point counting', () => {
    const overlays = Array.from({ length: 300 }, (_, i) =>
      line(100 + i, `/run/crib/rootfs/c${i}`, 'overlay', `rw,lowerdir=/sys/fs/cgroup/x:/l${i},upperdir=/u${i},workdir=/w${i}`));
    const text = [
      line(1, '/sys/fs/cgroup', 'tmpfs', 'ro,mode=755'),
      ...overlays.slice(0, 150),
      line(2, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
      line(3, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
      line(4, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
      line(5, '/sys/fs/cgroup/pids', 'tmpfs', 'rw'), // hides the pids hierarchy
      line(6, '/sys/fs/cgroup/memory/sub', 'cgroup', 'rw,memory'), // not directly under the root
      line(7, '/sys/fs/cgroupies', 'cgroup', 'rw,blkio'), // a sibling whose name starts like the root
      ...overlays.slice(150),
      line(8, '/sys/fs/cgroup/net_cls', 'cgroup', 'rw,net_cls'),
    ].join('\n');
    const mounts = cgroupV1Mounts(text, '/sys/fs/cgroup');
    expect(mounts).toEqual([
      { dir: '/sys/fs/cgroup/cpu,cpuacct', options: ['rw', 'cpu', 'cpuacct'] },
      { dir: '/sys/fs/cgroup/memory', options: ['rw', 'memory'] },
      { dir: '/sys/fs/cgroup/net_cls', options: ['rw', 'net_cls'] },
    ]);
    expect(controllerMount(mounts, 'cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(controllerMount(mounts, 'pids')).toBeUndefined();
  });

  it('matches a root whose path the mount table escapes', () => {
    const text = [line(1, '/t\\040cg/memory', 'cgroup', 'rw,memory'), line(2, '/t/memory', 'cgroup', 'rw,memory')].join('\n');
    expect(cgroupV1Mounts(text, '/t cg')).toEqual([{ dir: '/t cg/memory', options: ['rw', 'memory'] }]);
  });
});
