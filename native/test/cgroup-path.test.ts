// linux.cgroupsPath → cgroup path, through the real library (crib_cg_resolve_path).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSED_CGROUP_PATHS, RESOLVED_CGROUP_PATHS } from '../../test-support/cgroup-path-cases.js';
import { resolveCgroupPath } from '../../src/stats/cgroup-path.js';
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
  it.each(RESOLVED_CGROUP_PATHS)('%s → %s', async (input, expected) => {
    const r = await resolvePath(input);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(expected);
  });

  it.each(REFUSED_CGROUP_PATHS)('rejects %s', async (input, message) => {
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

// The C library is the authority: the daemon's TypeScript resolver (stats) must agree with it.
describe('agreement of the daemon\'s resolveCgroupPath with crib_cg_resolve_path', () => {
  it('resolves every accepted input to the same path as the native library', async () => {
    for (const input of ['kubepods-besteffort-pod123.slice:crib:abc', ':crib:x', '-.slice:crib:t',
      'machine.slice::bare', '/kubepods/pod1/c', 'a//b/./c', '']) {
      const r = await runDriver(driver, ['resolve', input, 'cid']);
      expect(r.code).toBe(0);
      expect(resolveCgroupPath(input, 'cid')).toBe(r.stdout.trim());
    }
  });
});
