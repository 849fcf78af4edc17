// ListMetricDescriptors: the cAdvisor names, help and label keys kubelet registers.
import { describe, expect, it } from 'vitest';
import { BASE_LABEL_KEYS, listMetricDescriptors } from './metric-descriptors.js';

describe('listMetricDescriptors', () => {
  it('describes the cAdvisor metrics kubelet serves, with the cAdvisor label keys', () => {
    const d = listMetricDescriptors();
    const byName = new Map(d.map((x) => [x.name, x]));
    expect(byName.size).toBe(d.length);
    for (const name of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes',
      'container_memory_usage_bytes', 'container_memory_rss', 'container_spec_memory_limit_bytes',
      'container_network_receive_bytes_total', 'container_network_transmit_bytes_total',
      'container_fs_usage_bytes', 'container_processes', 'container_oom_events_total']) {
      expect(byName.get(name), name).toBeDefined();
      expect(byName.get(name)!.help).not.toBe('');
    }
    expect(byName.get('container_cpu_usage_seconds_total')).toEqual({
      name: 'container_cpu_usage_seconds_total',
      help: 'Cumulative cpu time consumed in seconds.',
      labelKeys: ['container', 'id', 'image', 'name', 'namespace', 'pod', 'cpu'],
    });
    expect(byName.get('container_network_receive_bytes_total')!.labelKeys)
      .toEqual(['container', 'id', 'image', 'name', 'namespace', 'pod', 'interface']);
    expect(byName.get('container_memory_working_set_bytes')!.labelKeys).toEqual([...BASE_LABEL_KEYS]);
  });
});
