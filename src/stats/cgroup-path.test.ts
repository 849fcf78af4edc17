// resolveCgroupPath must name the same directory crib-runtime creates: both are tested on the
// same table (test-support/cgroup-path-cases.ts), and a sample is checked against the C library.
import { describe, expect, it } from 'vitest';
import { REFUSED_CGROUP_PATHS, RESOLVED_CGROUP_PATHS } from '../../test-support/cgroup-path-cases.js';
import { InvalidArgumentError } from '../errors.js';
import { cgroupLayout, resolveCgroupPath, resolvePodCgroupPath } from './cgroup-path.js';

describe('resolveCgroupPath', () => {
  it.each(RESOLVED_CGROUP_PATHS)('%s → %s', (input, expected) => {
    expect(resolveCgroupPath(input, 'c1')).toBe(expected);
  });

  it.each(REFUSED_CGROUP_PATHS)('rejects %s', (input, message) => {
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
