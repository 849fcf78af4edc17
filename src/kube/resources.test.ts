import { describe, expect, it } from 'vitest';
import { memoryBytes, milliCpu } from './quantity.js';
import { linuxResources, memTotalBytes, milliCpuToQuota, milliCpuToShares, oomScoreAdj, qosClass } from './resources.js';

const GiB = 2 ** 30;

describe('quantities', () => {
  it('reads CPU as millicores and memory as bytes, in every suffix form the API accepts', () => {
    expect(milliCpu('500m', 'cpu')).toBe(500);
    expect(milliCpu('1.5', 'cpu')).toBe(1500);
    expect(milliCpu(2, 'cpu')).toBe(2000);
    expect(milliCpu('0.0001', 'cpu')).toBe(1);
    expect(memoryBytes('128Mi', 'm')).toBe(128 * 2 ** 20);
    expect(memoryBytes('1G', 'm')).toBe(1e9);
    expect(memoryBytes('2e3', 'm')).toBe(2000);
    expect(memoryBytes('1.5Ki', 'm')).toBe(1536);
  });

  it('refuses what is not a quantity, naming the field', () => {
    expect(() => milliCpu('half', 'containers[0].resources.limits.cpu')).toThrow('containers[0].resources.limits.cpu: "half" is not a quantity');
    expect(() => memoryBytes('12 MB', 'x')).toThrow('"12 MB" is not a quantity');
    expect(() => memoryBytes('-1Gi', 'x')).toThrow('is not a quantity');
  });
});

describe('QoS class', () => {
  it('is BestEffort without requests or limits, Guaranteed when every container limits both and requests its limits', () => {
    expect(qosClass([{}, { resources: {} }])).toBe('BestEffort');
    expect(qosClass([{ resources: { limits: { cpu: '1', memory: '1Gi' } } }])).toBe('Guaranteed');
    expect(qosClass([{ resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '1000m', memory: '1Gi' } } }])).toBe('Guaranteed');
  });

  it('is Burstable when anything is requested but not every container is guaranteed', () => {
    expect(qosClass([{ resources: { requests: { cpu: '100m' } } }])).toBe('Burstable');
    expect(qosClass([{ resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } } }])).toBe('Burstable');
    expect(qosClass([{ resources: { limits: { cpu: '1', memory: '1Gi' } } }, {}])).toBe('Burstable');
    expect(qosClass([{ resources: { limits: { cpu: '1' } } }])).toBe('Burstable');
  });
});

describe('LinuxContainerResources as kubelet computes them', () => {
  it('takes CPU shares from the request (a limit alone stands in for it), at least 2', () => {
    expect(milliCpuToShares(0)).toBe(2);
    expect(milliCpuToShares(1)).toBe(2);
    expect(milliCpuToShares(100)).toBe(102);
    expect(milliCpuToShares(1000)).toBe(1024);
    expect(linuxResources({ limits: { cpu: '250m' } }, 'Burstable', GiB).cpuShares).toBe(256);
    expect(linuxResources({ requests: { cpu: '250m' }, limits: { cpu: '2' } }, 'Burstable', GiB).cpuShares).toBe(256);
  });

  it('takes the CFS quota from the limit over a 100 ms period, at least 1 ms, none without a limit', () => {
    expect(milliCpuToQuota(0)).toBe(0);
    expect(milliCpuToQuota(500)).toBe(50_000);
    expect(milliCpuToQuota(5)).toBe(1000);
    expect(linuxResources({ requests: { cpu: '1' } }, 'Burstable', GiB)).toMatchObject({ cpuQuota: 0, cpuPeriod: 100_000 });
  });

  it('sets the memory limit and oom_score_adj by class', () => {
    expect(linuxResources({ limits: { cpu: '1', memory: '256Mi' } }, 'Guaranteed', 4 * GiB)).toEqual({
      cpuShares: 1024, cpuPeriod: 100_000, cpuQuota: 100_000, memoryLimitInBytes: 256 * 2 ** 20, oomScoreAdj: -997,
    });
    expect(linuxResources(undefined, 'BestEffort', 4 * GiB)).toEqual({ cpuShares: 2, cpuPeriod: 100_000, cpuQuota: 0, memoryLimitInBytes: 0, oomScoreAdj: 1000 });
    // Burstable: 1000 - 1000 * request / capacity; 1 GiB of 4 GiB -> 750.
    expect(linuxResources({ requests: { memory: '1Gi' } }, 'Burstable', 4 * GiB).oomScoreAdj).toBe(750);
  });

  it('keeps a Burstable score within 3..999', () => {
    expect(oomScoreAdj('Burstable', 0, 4 * GiB)).toBe(999);
    expect(oomScoreAdj('Burstable', 4 * GiB, 4 * GiB)).toBe(3);
    expect(oomScoreAdj('Burstable', 8 * GiB, 4 * GiB)).toBe(3);
    expect(oomScoreAdj('Burstable', 1, 4 * GiB)).toBe(999);
  });

  it('reads the node memory from /proc/meminfo', () => {
    expect(memTotalBytes('MemTotal:        8123456 kB\nMemFree: 1 kB\n')).toBe(8123456 * 1024);
  });
});
