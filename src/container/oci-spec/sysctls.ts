// Container-level sysctls (pod sysctls are written into the pod namespaces by crib-pinns).
// A sysctl may only be set in a namespace the container does not share with the node:
// net.* with host networking, or kernel.shm* with host IPC, would change the whole node.
import { InvalidArgumentError } from '../../errors.js';
import { sysctlNamespace } from '../../sandbox/namespaces.js';
import type { OciNamespace } from './oci-types.js';

const KIND_TO_NS = { net: 'network', ipc: 'ipc', uts: 'uts' } as const;

export function containerSysctls(sysctls: Record<string, string> | undefined, namespaces: OciNamespace[]): Record<string, string> | undefined {
  if (!sysctls || Object.keys(sysctls).length === 0) return undefined;
  for (const [key, value] of Object.entries(sysctls)) {
    const ns = KIND_TO_NS[sysctlNamespace(key)];
    if (!namespaces.some((n) => n.type === ns)) {
      throw new InvalidArgumentError(`sysctl "${key}" needs a ${ns} namespace of the pod or container, but the container uses the node's`);
    }
    if (value.includes('\0') || value.includes('\n')) throw new InvalidArgumentError(`sysctl "${key}" has an invalid value`);
  }
  return { ...sysctls };
}
