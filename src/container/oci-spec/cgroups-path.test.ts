import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { cgroupsPath } from './cgroups-path.js';

describe('cgroupsPath', () => {
  const cases: [string, string, string][] = [
    ['/kubepods/burstable/pod123', 'abc', '/kubepods/burstable/pod123/crib-abc'],
    ['/kubepods/', 'abc', '/kubepods/crib-abc'],
    ['', 'abc', '/crib/crib-abc'],
    ['kubepods-burstable-pod123.slice', 'abc', 'kubepods-burstable-pod123.slice:crib:abc'],
    ['/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice', 'abc', 'kubepods-besteffort-pod1.slice:crib:abc'],
  ];
  for (const [parent, id, want] of cases) it(`${parent || '(empty)'} → ${want}`, () => expect(cgroupsPath(parent, id)).toBe(want));

  it('rejects escapes and odd ids', () => {
    expect(() => cgroupsPath('/kubepods/../etc', 'a')).toThrow(/cgroupParent "\/kubepods\/..\/etc"/);
    expect(() => cgroupsPath('kubepods', 'a')).toThrow(/must be an absolute cgroup path or a systemd slice/);
    expect(() => cgroupsPath('/k', '../x')).toThrow(InvalidArgumentError);
  });
});
