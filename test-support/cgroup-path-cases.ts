// linux.cgroupsPath → cgroup path cases, shared by the two implementations that must agree:
// the C library crib-runtime uses (native/test/cgroup-path.test.ts) and the daemon's reading of
// stats from the same directories (src/stats/cgroup-path.test.ts). Resolved for container id c1.

/** [cgroupsPath, the cgroup path it names]. */
export const RESOLVED_CGROUP_PATHS: readonly [string, string][] = [
  // systemd "slice:prefix:name": slices nest by dash, the unit is <prefix>-<name>.scope
  ['kubepods-besteffort-pod123.slice:cri-containerd:abc',
    '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice/cri-containerd-abc.scope'],
  ['kubepods-burstable-podx_y.slice:crio:0123',
    '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podx_y.slice/crio-0123.scope'],
  ['kubepods.slice:crib:id', '/kubepods.slice/crib-id.scope'],
  ['system.slice:docker:f00', '/system.slice/docker-f00.scope'],
  ['-.slice:crib:top', '/crib-top.scope'],
  [':crib:noslice', '/system.slice/crib-noslice.scope'],
  ['machine.slice::bare', '/machine.slice/bare.scope'],
  ['kubepods.slice:crib:kubepods-pod1.slice', '/kubepods.slice/kubepods-pod1.slice'],
  // plain paths: relative made absolute, "." and empty components dropped
  ['/kubepods/besteffort/pod1/c1', '/kubepods/besteffort/pod1/c1'],
  ['kubepods/pod1', '/kubepods/pod1'],
  ['/a//b/./c/', '/a/b/c'],
  ['', '/crib/c1'],
];

/** [cgroupsPath, part of the error message that refuses it]. */
export const REFUSED_CGROUP_PATHS: readonly [string, string][] = [
  ['/a/../b', '".." is not allowed'],
  ['../escape', '".." is not allowed'],
  ['a/b/..', '".." is not allowed'],
  ['kubepods.slice:crib:..', 'must not contain'],
  ['kubepods.slice:cr/ib:x', 'must not contain'],
  ['kube/pods.slice:crib:x', 'not a systemd slice name'],
  ['kubepods:crib:x', 'not a systemd slice name'],
  ['kube--pods.slice:crib:x', 'misplaced dash'],
  ['-kubepods.slice:crib:x', 'misplaced dash'],
  ['kubepods-.slice:crib:x', 'misplaced dash'],
  ['kubepods.slice:crib:', 'unit name is empty'],
  ['/', 'root cgroup'],
  ['/./', 'root cgroup'],
];
