// resolveCgroupPath must name the same directory crib-runtime creates: the table mirrors
// native/test/cgroup-path.test.ts, and a sample of it is checked against the C library itself.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { cgroupLayout, resolveCgroupPath, resolvePodCgroupPath } from './cgroup-path.js';

describe('resolveCgroupPath', () => {
  it.each([
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
    ['/kubepods/besteffort/pod1/c1', '/kubepods/besteffort/pod1/c1'],
    ['kubepods/pod1', '/kubepods/pod1'],
    ['/a//b/./c/', '/a/b/c'],
    ['', '/crib/c1'],
  ])('%s → %s', (input, expected) => {
    expect(resolveCgroupPath(input, 'c1')).toBe(expected);
  });

  it.each([
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
  ])('rejects %s', (input, message) => {
    const call = () => resolveCgroupPath(input, 'c1');
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(`cgroupsPath ${input}`);
    expect(call).toThrow(message);
  });

  it('rejects an id that cannot name a cgroup when cgroupsPath is empty', () => {
    for (const id of ['..', 'a/b', '']) {
      expect(() => resolveCgroupPath('', id)).toThrow('cannot name a cgroup');
    }
  });
});

describe('resolvePodCgroupPath', () => {
  it.each([
    ['kubepods-besteffort-pod123.slice',
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice'],
    ['/kubepods.slice/kubepods-pod9.slice', '/kubepods.slice/kubepods-pod9.slice'],
    ['/kubepods/besteffort/pod123', '/kubepods/besteffort/pod123'],
    ['kubepods//pod1/', '/kubepods/pod1'],
  ])('%s → %s', (parent, expected) => {
    expect(resolvePodCgroupPath(parent)).toBe(expected);
  });

  it('has no pod cgroup without a parent and refuses ".."', () => {
    expect(resolvePodCgroupPath('')).toBeUndefined();
    expect(() => resolvePodCgroupPath('/kubepods/../x')).toThrow(InvalidArgumentError);
  });
});

describe('cgroupLayout', () => {
  it('detects this host as cgroup v1 (hybrid) and the unified mount as v2', () => {
    expect(cgroupLayout({})).toEqual({ mode: 1, root: '/sys/fs/cgroup' });
    expect(cgroupLayout({ CRIB_CGROUP_ROOT: '/sys/fs/cgroup/unified/' }))
      .toEqual({ mode: 2, root: '/sys/fs/cgroup/unified' });
  });

  it('honours CRIB_CGROUP_MODE and rejects bad overrides', () => {
    expect(cgroupLayout({ CRIB_CGROUP_ROOT: '/tmp/x', CRIB_CGROUP_MODE: 'v2' })).toEqual({ mode: 2, root: '/tmp/x' });
    expect(cgroupLayout({ CRIB_CGROUP_ROOT: '/tmp/x', CRIB_CGROUP_MODE: 'v1' })).toEqual({ mode: 1, root: '/tmp/x' });
    expect(() => cgroupLayout({ CRIB_CGROUP_MODE: 'v3' })).toThrow('CRIB_CGROUP_MODE v3');
    expect(() => cgroupLayout({ CRIB_CGROUP_ROOT: 'rel' })).toThrow('CRIB_CGROUP_ROOT rel');
  });
});

// The C library is the authority: build its resolve driver (as native/test does) and compare.
describe('agreement with crib_cg_resolve_path', () => {
  it('resolves every accepted input to the same path as the native library', async () => {
    const { buildDriver, runDriver } = await import('../../native/test/support/cgroup-driver.js');
    const driver = await buildDriver();
    try {
      for (const input of ['kubepods-besteffort-pod123.slice:crib:abc', ':crib:x', '-.slice:crib:t',
        'machine.slice::bare', '/kubepods/pod1/c', 'a//b/./c', '']) {
        const r = await runDriver(driver, ['resolve', input, 'cid']);
        expect(r.code).toBe(0);
        expect(resolveCgroupPath(input, 'cid')).toBe(r.stdout.trim());
      }
    } finally {
      driver.cleanup();
    }
  });
});
