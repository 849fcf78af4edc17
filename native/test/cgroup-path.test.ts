// linux.cgroupsPath → cgroup path, through the real library (crib_cg_resolve_path).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDriver, runDriver, type Driver } from './support/cgroup-driver.js';

let driver: Driver;
beforeAll(async () => {
  driver = await buildDriver();
});
afterAll(() => driver?.cleanup());

async function resolvePath(cgroupsPath: string, id = 'c1') {
  return runDriver(driver, ['resolve', cgroupsPath, id]);
}

describe('crib_cg_resolve_path', () => {
  it.each([
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
  ])('%s → %s', async (input, expected) => {
    const r = await resolvePath(input);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(expected);
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
  ])('rejects %s', async (input, message) => {
    const r = await resolvePath(input);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cgroupsPath ${input}`);
    expect(r.stderr).toContain(message);
  });

  it('rejects an id that cannot name a cgroup when cgroupsPath is empty', async () => {
    for (const id of ['..', 'a/b']) {
      const r = await resolvePath('', id);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('cannot name a cgroup');
    }
  });
});
