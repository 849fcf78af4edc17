// The metrics crib serves through ListPodSandboxMetrics, for kubelet's /metrics/cadvisor when
// the PodAndContainerStatsFromCRI feature replaces cAdvisor. kubelet registers each descriptor
// as a Prometheus metric with exactly these label keys (pkg/kubelet/metrics/collectors/
// cri_metrics.go), so names, help and labels follow cAdvisor's, which dashboards and the HPA
// pipeline already query: container_memory_working_set_bytes{namespace, pod, container}.
import type { MetricDescriptor } from '../gen/runtime/v1/MetricDescriptor.js';

/** cAdvisor's per-container labels: k8s container name ("" for the pod's own cgroup), cgroup
 * path, image, runtime name (the container or sandbox id), pod namespace and pod name. */
export const BASE_LABEL_KEYS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

export type MetricKind = 'COUNTER' | 'GAUGE';

export interface MetricDef {
  name: string;
  help: string;
  type: MetricKind;
  /** Label keys after the base ones. */
  extra: readonly string[];
}

const def = (name: string, type: MetricKind, help: string, extra: readonly string[] = []): MetricDef =>
  ({ name, type, help, extra });

export const METRICS = {
  cpuUsage: def('container_cpu_usage_seconds_total', 'COUNTER',
    'Cumulative cpu time consumed in seconds.', ['cpu']),
  cpuUser: def('container_cpu_user_seconds_total', 'COUNTER',
    'Cumulative user cpu time consumed in seconds.'),
  cpuSystem: def('container_cpu_system_seconds_total', 'COUNTER',
    'Cumulative system cpu time consumed in seconds.'),
  cfsPeriods: def('container_cpu_cfs_periods_total', 'COUNTER',
    'Number of elapsed enforcement period intervals.'),
  cfsThrottledPeriods: def('container_cpu_cfs_throttled_periods_total', 'COUNTER',
    'Number of throttled period intervals.'),
  cfsThrottledSeconds: def('container_cpu_cfs_throttled_seconds_total', 'COUNTER',
    'Total time duration the container has been throttled.'),
  memoryUsage: def('container_memory_usage_bytes', 'GAUGE',
    'Current memory usage in bytes, including all memory regardless of when it was accessed'),
  memoryWorkingSet: def('container_memory_working_set_bytes', 'GAUGE',
    'Current working set in bytes.'),
  memoryRss: def('container_memory_rss', 'GAUGE', 'Size of RSS in bytes.'),
  memoryCache: def('container_memory_cache', 'GAUGE', 'Number of bytes of page cache memory.'),
  memorySwap: def('container_memory_swap', 'GAUGE', 'Container swap usage in bytes.'),
  memoryFailcnt: def('container_memory_failcnt', 'COUNTER', 'Number of memory usage hits limits'),
  memoryFailures: def('container_memory_failures_total', 'COUNTER',
    'Cumulative count of memory allocation failures.', ['failure_type', 'scope']),
  memoryLimit: def('container_spec_memory_limit_bytes', 'GAUGE',
    'Memory limit for the container in bytes (0 when unlimited).'),
  oomEvents: def('container_oom_events_total', 'COUNTER',
    'Count of out of memory events observed for the container'),
  processes: def('container_processes', 'GAUGE',
    'Number of tasks in the container (pids.current; processes in cgroup.procs without a pids controller).'),
  fsUsage: def('container_fs_usage_bytes', 'GAUGE',
    'Number of bytes that are consumed by the container on this filesystem.', ['device']),
  netRxBytes: def('container_network_receive_bytes_total', 'COUNTER',
    'Cumulative count of bytes received', ['interface']),
  netRxPackets: def('container_network_receive_packets_total', 'COUNTER',
    'Cumulative count of packets received', ['interface']),
  netRxErrors: def('container_network_receive_errors_total', 'COUNTER',
    'Cumulative count of errors encountered while receiving', ['interface']),
  netRxDropped: def('container_network_receive_packets_dropped_total', 'COUNTER',
    'Cumulative count of packets dropped while receiving', ['interface']),
  netTxBytes: def('container_network_transmit_bytes_total', 'COUNTER',
    'Cumulative count of bytes transmitted', ['interface']),
  netTxPackets: def('container_network_transmit_packets_total', 'COUNTER',
    'Cumulative count of packets transmitted', ['interface']),
  netTxErrors: def('container_network_transmit_errors_total', 'COUNTER',
    'Cumulative count of errors encountered while transmitting', ['interface']),
  netTxDropped: def('container_network_transmit_packets_dropped_total', 'COUNTER',
    'Cumulative count of packets dropped while transmitting', ['interface']),
  lastSeen: def('container_last_seen', 'GAUGE', 'Last time a container was seen by the exporter'),
} as const satisfies Record<string, MetricDef>;

/** ListMetricDescriptors: every metric podSandboxMetrics can emit, with its label keys. */
export function listMetricDescriptors(): MetricDescriptor[] {
  return Object.values(METRICS).map((m) => ({
    name: m.name,
    help: m.help,
    labelKeys: [...BASE_LABEL_KEYS, ...m.extra],
  }));
}
