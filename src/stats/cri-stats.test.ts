// Exact CRI messages built from fixed readings.
import { describe, expect, it } from 'vitest';
import type { CgroupStats } from './cgroup-stats.js';
import { buildContainerStats, buildNetworkUsage, buildPodSandboxStats } from './cri-stats.js';
import type { NetworkReading } from './network-stats.js';
import { roundTripResponse } from './test-wire.js';

const T = '1700000000123456789';

const reading: CgroupStats = {
  timestamp: T,
  cpu: {
    usageNs: 12_345_678_901_234_567_890n, userNs: 2n, systemNs: 1n,
    psi: { some: { avg10: 1.5, avg60: 0.5, avg300: 0.25, totalNs: 4_200_000n } },
  },
  memory: {
    usageBytes: 50n, workingSetBytes: 40n, rssBytes: 30n, cacheBytes: 20n, pageFaults: 7n,
    majorPageFaults: 1n, limitBytes: 100n, availableBytes: 60n,
  },
  swap: { usageBytes: 4096n, limitBytes: 8192n, availableBytes: 4096n },
  pids: { current: 3n },
  io: { psi: { full: { avg10: 0, avg60: 0, avg300: 0, totalNs: 5000n } } },
};

const attributes = {
  id: 'c1', metadata: { name: 'app', attempt: 0 }, labels: { a: 'b' }, annotations: { x: 'y' },
};

const net: NetworkReading = {
  timestamp: T,
  interfaces: [
    { name: 'lo', rxBytes: 9n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 9n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
    { name: 'net1', rxBytes: 5n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 6n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
    { name: 'eth0', rxBytes: 100n, rxPackets: 2n, rxErrors: 1n, rxDropped: 0n, txBytes: 200n, txPackets: 3n, txErrors: 2n, txDropped: 0n },
  ],
};

describe('buildContainerStats', () => {
  it('maps every reading to its CRI field', () => {
    expect(buildContainerStats({
      attributes, cgroup: reading, nanoCores: 250_000_000n,
      writableLayer: { usage: { bytes: 8192n, inodes: 3n, timestamp: '5' }, mountpoint: '/var/lib/crib/snapshots' },
    })).toEqual({
      attributes,
      cpu: {
        timestamp: T,
        usageCoreNanoSeconds: { value: '12345678901234567890' },
        usageNanoCores: { value: '250000000' },
        psi: { Some: { Total: '4200000', Avg10: 1.5, Avg60: 0.5, Avg300: 0.25 }, Full: null },
      },
      memory: {
        timestamp: T,
        workingSetBytes: { value: '40' },
        availableBytes: { value: '60' },
        usageBytes: { value: '50' },
        rssBytes: { value: '30' },
        pageFaults: { value: '7' },
        majorPageFaults: { value: '1' },
        psi: null,
      },
      writableLayer: {
        timestamp: '5',
        fsId: { mountpoint: '/var/lib/crib/snapshots' },
        usedBytes: { value: '8192' },
        inodesUsed: { value: '3' },
      },
      swap: { timestamp: T, swapAvailableBytes: { value: '4096' }, swapUsageBytes: { value: '4096' } },
      io: { timestamp: T, psi: { Some: null, Full: { Total: '5000', Avg10: 0, Avg60: 0, Avg300: 0 } } },
    });
  });

  it('leaves out what was not read: no rate yet, no limit, no cgroup', () => {
    const bare: CgroupStats = {
      timestamp: T,
      cpu: { usageNs: 5n },
      memory: { ...reading.memory!, limitBytes: undefined, availableBytes: undefined },
    };
    const s = buildContainerStats({ attributes, cgroup: bare });
    expect(s.cpu).toEqual({ timestamp: T, usageCoreNanoSeconds: { value: '5' }, usageNanoCores: null, psi: null });
    expect(s.memory!.availableBytes).toBeNull();
    expect(s.swap).toBeNull();
    expect(s.io).toBeNull();
    expect(s.writableLayer).toBeNull();
    expect(buildContainerStats({ attributes })).toEqual({
      attributes, cpu: null, memory: null, writableLayer: null, swap: null, io: null,
    });
  });
});

describe('buildPodSandboxStats', () => {
  it('fills linux cpu, memory, network, process and the container list', () => {
    const container = buildContainerStats({ attributes, cgroup: reading });
    const podAttrs = { id: 'p1', metadata: { name: 'web', uid: 'u1', namespace: 'default', attempt: 0 }, labels: {}, annotations: {} };
    const s = buildPodSandboxStats({
      attributes: podAttrs, cgroup: reading, nanoCores: 1n, network: net, containers: [container],
    });
    expect(s.attributes).toBe(podAttrs);
    expect(s.windows).toBeNull();
    expect(s.linux!.cpu!.usageNanoCores).toEqual({ value: '1' });
    expect(s.linux!.memory!.workingSetBytes).toEqual({ value: '40' });
    expect(s.linux!.process).toEqual({ timestamp: T, processCount: { value: '3' } });
    expect(s.linux!.containers).toEqual([container]);
    expect(s.linux!.network).toEqual({
      timestamp: T,
      defaultInterface: {
        name: 'eth0', rxBytes: { value: '100' }, rxErrors: { value: '1' }, txBytes: { value: '200' }, txErrors: { value: '2' },
      },
      interfaces: [
        { name: 'net1', rxBytes: { value: '5' }, rxErrors: { value: '0' }, txBytes: { value: '6' }, txErrors: { value: '0' } },
        { name: 'eth0', rxBytes: { value: '100' }, rxErrors: { value: '1' }, txBytes: { value: '200' }, txErrors: { value: '2' } },
      ],
    });
  });

  it('picks the first non-loopback interface when eth0 is absent, none when only lo', () => {
    const noEth0 = { ...net, interfaces: net.interfaces.filter((i) => i.name !== 'eth0') };
    expect(buildNetworkUsage(noEth0).defaultInterface!.name).toBe('net1');
    expect(buildNetworkUsage(net, 'net1').defaultInterface!.name).toBe('net1');
    const onlyLo = { ...net, interfaces: net.interfaces.slice(0, 1) };
    expect(buildNetworkUsage(onlyLo)).toEqual({ timestamp: T, defaultInterface: null, interfaces: [] });
  });
});

describe('wire format', () => {
  it('encodes and decodes through the CRI proto unchanged (uint64 beyond 2^53 included)', () => {
    const container = buildContainerStats({
      attributes, cgroup: reading, nanoCores: 7n,
      writableLayer: { usage: { bytes: 1n, inodes: 1n, timestamp: T }, mountpoint: '/m' },
    });
    const back = roundTripResponse('ListContainerStats', { stats: [container] }) as { stats: unknown[] };
    expect(back.stats[0]).toEqual(container);
    const pod = buildPodSandboxStats({
      attributes: { id: 'p1', metadata: { name: 'web', uid: 'u1', namespace: 'default', attempt: 0 }, labels: {}, annotations: {} },
      cgroup: reading, nanoCores: 1n, network: net, containers: [container],
    });
    const podBack = roundTripResponse('ListPodSandboxStats', { stats: [pod] }) as { stats: unknown[] };
    expect(podBack.stats[0]).toEqual(pod);
  });
});
