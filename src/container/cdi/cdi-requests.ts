// The CDI devices a container asks for: the CRI's CDI_devices field, then the names carried by
// "cdi.k8s.io/<anything>" annotations (a comma-separated list each; how device plugins asked
// before the field existed, and what containerd and CRI-O still honour).
import type { ContainerConfig__Output } from '../../gen/runtime/v1/ContainerConfig.js';

export const CDI_ANNOTATION_PREFIX = 'cdi.k8s.io/';

export function requestedCdiDevices(config: Pick<ContainerConfig__Output, 'CDIDevices' | 'annotations'>): string[] {
  const names = (config.CDIDevices ?? []).map((d) => d.name);
  // Sorted keys: the order devices are applied in must not depend on map order.
  const keys = Object.keys(config.annotations ?? {}).filter((k) => k.startsWith(CDI_ANNOTATION_PREFIX)).sort();
  for (const k of keys) {
    for (const n of config.annotations[k]!.split(',')) {
      const name = n.trim();
      if (name !== '') names.push(name);
    }
  }
  return names;
}
