import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedAndReadonlyPaths } from './masked-paths.js';
import { securityContext } from './test-fixtures.js';

describe('maskedAndReadonlyPaths', () => {
  it("uses containerd's defaults when kubelet sends none", () => {
    expect(maskedAndReadonlyPaths(null, false)).toEqual({ maskedPaths: DEFAULT_MASKED_PATHS, readonlyPaths: DEFAULT_READONLY_PATHS });
    expect(DEFAULT_MASKED_PATHS).toContain('/proc/kcore');
    expect(DEFAULT_MASKED_PATHS).toContain('/sys/devices/virtual/powercap');
    expect(DEFAULT_READONLY_PATHS).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  });
  it("uses kubelet's lists when given", () => {
    const sc = securityContext({ maskedPaths: ['/proc/keys'], readonlyPaths: ['/proc/bus'] });
    expect(maskedAndReadonlyPaths(sc, false)).toEqual({ maskedPaths: ['/proc/keys'], readonlyPaths: ['/proc/bus'] });
  });
  it('gives privileged containers none', () => {
    expect(maskedAndReadonlyPaths(securityContext({ maskedPaths: ['/proc/keys'] }), true)).toEqual({ maskedPaths: [], readonlyPaths: [] });
  });
  it('rejects relative paths, naming the field', () => {
    expect(() => maskedAndReadonlyPaths(securityContext({ maskedPaths: ['proc/keys'] }), false)).toThrow(InvalidArgumentError);
    expect(() => maskedAndReadonlyPaths(securityContext({ readonlyPaths: ['x'] }), false)).toThrow(/readonlyPaths: "x"/);
  });
});
