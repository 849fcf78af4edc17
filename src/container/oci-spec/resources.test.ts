import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { type ResourceInput, containerResources, currentOomScoreAdj, oomScoreAdj, swapAccounting } from './resources.js';
import { resources } from './test-fixtures.js';

const input = (o: Parameters<typeof resources>[0], extra: Partial<ResourceInput> = {}): ResourceInput => ({
  resources: resources(o),
  cgroupVersion: 1,
  swapAvailable: true,
  hugetlbAvailable: true,
  ...extra,
});

describe('containerResources', () => {
  const cases: { name: string; in: ResourceInput; want: ReturnType<typeof containerResources> }[] = [
    { name: 'no resources', in: { ...input({}), resources: null }, want: {} },
    { name: 'all zero → nothing set', in: input({}), want: {} },
    {
      name: 'cpu shares/quota/period and cpuset',
      in: input({ cpuShares: '512', cpuQuota: '50000', cpuPeriod: '100000', cpusetCpus: '0-1', cpusetMems: '0' }),
      want: { cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1', mems: '0' } },
    },
    { name: 'memory limit → swap = limit (no swap)', in: input({ memoryLimitInBytes: '268435456' }), want: { memory: { limit: 268435456, swap: 268435456 } } },
    { name: 'explicit swap limit', in: input({ memoryLimitInBytes: '100', memorySwapLimitInBytes: '300' }), want: { memory: { limit: 100, swap: 300 } } },
    { name: 'unlimited swap', in: input({ memoryLimitInBytes: '100', memorySwapLimitInBytes: '-1' }), want: { memory: { limit: 100, swap: -1 } } },
    { name: 'no swap controller → limit only', in: input({ memoryLimitInBytes: '100', memorySwapLimitInBytes: '300' }, { swapAvailable: false }), want: { memory: { limit: 100 } } },
    {
      name: 'hugepages',
      in: input({ hugepageLimits: [{ pageSize: '2MB', limit: '4194304' }] }),
      want: { hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] },
    },
    { name: 'hugepages skipped without hugetlb', in: input({ hugepageLimits: [{ pageSize: '2MB', limit: '1' }] }, { hugetlbAvailable: false }), want: {} },
    { name: 'unified on v2', in: input({ unified: { 'memory.high': '1000000' } }, { cgroupVersion: 2 }), want: { unified: { 'memory.high': '1000000' } } },
  ];
  for (const c of cases) it(c.name, () => expect(containerResources(c.in)).toEqual(c.want));

  const invalid: [string, ResourceInput, RegExp][] = [
    ['negative shares', input({ cpuShares: '-2' }), /resources.cpuShares "-2"/],
    ['junk memory', input({ memoryLimitInBytes: '1G' }), /resources.memoryLimitInBytes "1G"/],
    ['bad cpuset', input({ cpusetCpus: '0-a' }), /resources.cpusetCpus "0-a"/],
    ['swap below memory', input({ memoryLimitInBytes: '300', memorySwapLimitInBytes: '100' }), /memorySwapLimitInBytes 100 is below/],
    ['unified on v1', input({ unified: { 'memory.high': '1' } }), /resources.unified .* needs cgroup v2/],
    ['bad hugepage size', input({ hugepageLimits: [{ pageSize: '2M', limit: '1' }] }), /hugepageLimits\[0\].pageSize "2M"/],
  ];
  for (const [name, i, msg] of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => containerResources(i)).toThrow(InvalidArgumentError);
      expect(() => containerResources(i)).toThrow(msg);
    });
  }
});

describe('oomScoreAdj', () => {
  it('passes the CRI value through, raised to the daemon floor', () => {
    expect(oomScoreAdj(null, 0)).toBeUndefined();
    expect(oomScoreAdj(resources({ oomScoreAdj: '1000' }), 0)).toBe(1000);
    expect(oomScoreAdj(resources({ oomScoreAdj: '-997' }), -1000)).toBe(-997);
    expect(oomScoreAdj(resources({ oomScoreAdj: '-997' }), 0)).toBe(0);
    expect(oomScoreAdj(resources({ oomScoreAdj: '0' }), 0)).toBe(0);
  });
  it('rejects values outside -1000..1000', () => {
    expect(() => oomScoreAdj(resources({ oomScoreAdj: '1001' }), 0)).toThrow(/oomScoreAdj 1001/);
    expect(() => oomScoreAdj(resources({ oomScoreAdj: '-1001' }), 0)).toThrow(InvalidArgumentError);
  });
  it('reads the daemon value', () => {
    expect(Number.isInteger(currentOomScoreAdj())).toBe(true);
  });
});

describe('swapAccounting', () => {
  // A prepared v2 tree: the root of a unified hierarchy never has memory.swap.max, so the
  // answer must come from a cgroup below it (the guest tier checks this on a real kernel).
  let root = '';
  const tree = (children: Record<string, string[]>, controllers = 'cpu memory pids') => {
    root = mkdtempSync(join(tmpdir(), 'crib-swap-acct-'));
    writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
    for (const [name, files] of Object.entries(children)) {
      mkdirSync(join(root, name));
      for (const f of files) writeFileSync(join(root, name, f), '');
    }
  };
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('v2: a child cgroup with the memory controller decides', () => {
    tree({ 'init.scope': ['cgroup.procs'], 'system.slice': ['memory.current', 'memory.swap.max'] });
    expect(swapAccounting(2, root)).toBe(true);
  });
  it('v2: memory without memory.swap.max means no swap accounting', () => {
    tree({ 'system.slice': ['memory.current'] });
    expect(swapAccounting(2, root)).toBe(false);
  });
  it('v2: no cgroup below the root yet: the memory controller decides', () => {
    tree({});
    expect(swapAccounting(2, root)).toBe(true);
    rmSync(root, { recursive: true, force: true });
    tree({}, 'cpu pids');
    expect(swapAccounting(2, root)).toBe(false);
  });
  it('v1: the memsw files of the memory hierarchy', () => {
    tree({ memory: ['memory.memsw.limit_in_bytes'] });
    expect(swapAccounting(1, root)).toBe(true);
    expect(swapAccounting(1, join(root, 'nothing'))).toBe(false);
  });
});
