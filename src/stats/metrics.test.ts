// ListMetricDescriptors and PodSandboxMetrics: exact entries, and every metric matches its
// descriptor's label keys (kubelet drops a metric whose labels do not fit its descriptor).
import { describe, expect, it } from 'vitest';
import type { Metric } from '../gen/runtime/v1/Metric.js';
import type { CgroupStats } from './cgroup-stats.js';
import { BASE_LABEL_KEYS } from './metric-descriptors.js';
import { listMetricDescriptors, podSandboxMetrics } from './metrics.js';
import type { NetworkReading } from './network-stats.js';
import { roundTripResponse } from './test-wire.js';

const T = '1700000000123456789';

const containerStats: CgroupStats = {
  timestamp: T,
  cpu: { usageNs: 3_999_999_999n, userNs: 2_500_000_000n, systemNs: 1_000_000_000n,
    periods: 10n, throttledPeriods: 2n, throttledNs: 1_500_000_000n },
  memory: { usageBytes: 50n, workingSetBytes: 40n, rssBytes: 30n, cacheBytes: 20n, pageFaults: 7n,
    majorPageFaults: 1n, limitBytes: 100n, availableBytes: 60n, failcnt: 4n, oomKills: 1n },
  swap: { usageBytes: 4096n },
  pids: { current: 3n },
};

const podStats: CgroupStats = {
  timestamp: T,
  cpu: { usageNs: 5_000_000_000n },
  memory: { usageBytes: 500n, workingSetBytes: 400n, rssBytes: 300n, cacheBytes: 200n, pageFaults: 0n, majorPageFaults: 0n },
};

const net: NetworkReading = {
  timestamp: T,
  interfaces: [
    { name: 'lo', rxBytes: 9n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 9n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
    { name: 'eth0', rxBytes: 100n, rxPackets: 2n, rxErrors: 1n, rxDropped: 5n, txBytes: 200n, txPackets: 3n, txErrors: 2n, txDropped: 6n },
  ],
};

const input = {
  podSandboxId: 'p1',
  metadata: { name: 'web', namespace: 'default' },
  cgroupPath: '/kubepods/pod-u1',
  stats: podStats,
  network: net,
  containers: [{
    id: 'c1', name: 'app', image: 'docker.io/library/busybox:latest', cgroupPath: '/kubepods/pod-u1/crib-c1',
    stats: containerStats,
    writableLayer: { usage: { bytes: 8192n, inodes: 3n, timestamp: '42' }, mountpoint: '/var/lib/crib' },
  }],
};

const find = (ms: Metric[], name: string, extra: string[] = []) =>
  ms.filter((m) => m.name === name && extra.every((e, i) => m.labelValues![BASE_LABEL_KEYS.length + i] === e));

describe('podSandboxMetrics', () => {
  const out = podSandboxMetrics(input);
  const c = out.containerMetrics![0]!;

  it('labels container metrics with name, cgroup id, image, runtime id, namespace and pod', () => {
    expect(out.podSandboxId).toBe('p1');
    expect(c.containerId).toBe('c1');
    expect(find(c.metrics!, 'container_cpu_usage_seconds_total')).toEqual([{
      name: 'container_cpu_usage_seconds_total',
      timestamp: T,
      metricType: 'COUNTER',
      labelValues: ['app', '/kubepods/pod-u1/crib-c1', 'docker.io/library/busybox:latest', 'c1', 'default', 'web', 'total'],
      value: { value: '3' }, // whole seconds, rounded down
    }]);
    expect(find(c.metrics!, 'container_memory_working_set_bytes')).toEqual([{
      name: 'container_memory_working_set_bytes',
      timestamp: T,
      metricType: 'GAUGE',
      labelValues: ['app', '/kubepods/pod-u1/crib-c1', 'docker.io/library/busybox:latest', 'c1', 'default', 'web'],
      value: { value: '40' },
    }]);
  });

  it('reports every container reading under its metric', () => {
    const v = (name: string, extra: string[] = []) => find(c.metrics!, name, extra).map((m) => m.value!.value);
    expect(v('container_cpu_user_seconds_total')).toEqual(['2']);
    expect(v('container_cpu_system_seconds_total')).toEqual(['1']);
    expect(v('container_cpu_cfs_periods_total')).toEqual(['10']);
    expect(v('container_cpu_cfs_throttled_periods_total')).toEqual(['2']);
    expect(v('container_cpu_cfs_throttled_seconds_total')).toEqual(['1']);
    expect(v('container_memory_usage_bytes')).toEqual(['50']);
    expect(v('container_memory_rss')).toEqual(['30']);
    expect(v('container_memory_cache')).toEqual(['20']);
    expect(v('container_memory_swap')).toEqual(['4096']);
    expect(v('container_memory_failcnt')).toEqual(['4']);
    expect(v('container_memory_failures_total', ['pgfault', 'hierarchy'])).toEqual(['7']);
    expect(v('container_memory_failures_total', ['pgmajfault', 'hierarchy'])).toEqual(['1']);
    expect(v('container_spec_memory_limit_bytes')).toEqual(['100']);
    expect(v('container_oom_events_total')).toEqual(['1']);
    expect(v('container_processes')).toEqual(['3']);
    expect(v('container_last_seen')).toEqual(['1700000000']);
    expect(find(c.metrics!, 'container_fs_usage_bytes')).toEqual([{
      name: 'container_fs_usage_bytes', timestamp: '42', metricType: 'GAUGE',
      labelValues: ['app', '/kubepods/pod-u1/crib-c1', 'docker.io/library/busybox:latest', 'c1', 'default', 'web', '/var/lib/crib'],
      value: { value: '8192' },
    }]);
    // No network at container level: the pod owns the namespace.
    expect(find(c.metrics!, 'container_network_receive_bytes_total')).toEqual([]);
  });

  it('reports the pod cgroup with container="" and the pod network per interface, without lo', () => {
    const podBase = ['', '/kubepods/pod-u1', '', 'p1', 'default', 'web'];
    expect(find(out.metrics!, 'container_memory_working_set_bytes')).toEqual([{
      name: 'container_memory_working_set_bytes', timestamp: T, metricType: 'GAUGE', labelValues: podBase, value: { value: '400' },
    }]);
    expect(find(out.metrics!, 'container_spec_memory_limit_bytes').map((m) => m.value)).toEqual([{ value: '0' }]);
    const rx = find(out.metrics!, 'container_network_receive_bytes_total');
    expect(rx).toEqual([{
      name: 'container_network_receive_bytes_total', timestamp: T, metricType: 'COUNTER',
      labelValues: [...podBase, 'eth0'], value: { value: '100' },
    }]);
    const v = (name: string) => find(out.metrics!, name).map((m) => m.value!.value);
    expect(v('container_network_transmit_bytes_total')).toEqual(['200']);
    expect(v('container_network_receive_errors_total')).toEqual(['1']);
    expect(v('container_network_transmit_errors_total')).toEqual(['2']);
    expect(v('container_network_receive_packets_dropped_total')).toEqual(['5']);
    expect(v('container_network_transmit_packets_dropped_total')).toEqual(['6']);
    expect(v('container_network_receive_packets_total')).toEqual(['2']);
    expect(v('container_network_transmit_packets_total')).toEqual(['3']);
    expect(find(out.metrics!, 'container_processes')).toEqual([]); // no pids reading for the pod
  });

  it('emits only described metrics, each with as many label values as its descriptor has keys', () => {
    const keys = new Map(listMetricDescriptors().map((d) => [d.name, d.labelKeys!.length]));
    const all = [...out.metrics!, ...c.metrics!];
    expect(all.length).toBeGreaterThan(30);
    for (const m of all) {
      expect(keys.has(m.name!), m.name).toBe(true);
      expect(m.labelValues!.length, m.name).toBe(keys.get(m.name!));
    }
  });

  it('is empty but well-formed for a pod with nothing read, and survives the wire', () => {
    expect(podSandboxMetrics({ podSandboxId: 'p2', metadata: {}, containers: [{ id: 'c2', name: 'x', image: '' }] }))
      .toEqual({ podSandboxId: 'p2', metrics: [], containerMetrics: [{ containerId: 'c2', metrics: [] }] });
    const back = roundTripResponse('ListPodSandboxMetrics', { podMetrics: [out] }) as { podMetrics: unknown[] };
    expect(back.podMetrics[0]).toEqual(out);
    const d = roundTripResponse('ListMetricDescriptors', { descriptors: listMetricDescriptors() }) as { descriptors: unknown[] };
    expect(d.descriptors).toEqual(listMetricDescriptors());
  });
});
