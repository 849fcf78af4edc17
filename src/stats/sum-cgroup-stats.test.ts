import { describe, expect, it } from 'vitest';
import { sumCgroupStats } from './sum-cgroup-stats.js';

const mem = (n: bigint) => ({
  usageBytes: n, workingSetBytes: n - 1n, rssBytes: n - 2n, cacheBytes: 1n, pageFaults: 3n,
  majorPageFaults: 0n, limitBytes: 1000n, availableBytes: 10n,
});

describe('sumCgroupStats', () => {
  it('adds CPU, memory, pids and swap; keeps the latest timestamp; drops limits', () => {
    expect(sumCgroupStats([
      { timestamp: '200', cpu: { usageNs: 10n, userNs: 6n, systemNs: 4n }, memory: mem(100n), pids: { current: 2n, limit: 5n } },
      { timestamp: '300', cpu: { usageNs: 5n, userNs: 5n, systemNs: 0n }, memory: mem(50n), swap: { usageBytes: 7n } },
      { timestamp: '100' },
    ])).toEqual({
      timestamp: '300',
      cpu: { usageNs: 15n, userNs: 11n, systemNs: 4n },
      memory: { usageBytes: 150n, workingSetBytes: 148n, rssBytes: 146n, cacheBytes: 2n, pageFaults: 6n, majorPageFaults: 0n },
      pids: { current: 2n },
      swap: { usageBytes: 7n },
    });
  });

  it('leaves out a split that not every part reports, and is undefined for nothing', () => {
    expect(sumCgroupStats([{ timestamp: '1', cpu: { usageNs: 1n, userNs: 1n } }, { timestamp: '1', cpu: { usageNs: 2n } }]))
      .toEqual({ timestamp: '1', cpu: { usageNs: 3n } });
    expect(sumCgroupStats([])).toBeUndefined();
  });
});
