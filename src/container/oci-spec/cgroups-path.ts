// linux.cgroupsPath for a container under its pod's cgroup parent, in the two forms runtimes
// understand: a cgroupfs path, or runc's systemd "slice:prefix:name" triple when the parent is
// a systemd slice (kubelet's systemd cgroup driver sends e.g. "kubepods-burstable-pod1.slice").
import { posix } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';

/** Parent used when the pod config names none. */
export const DEFAULT_CGROUP_PARENT = '/crib';

export function cgroupsPath(parent: string, containerId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
    throw new InvalidArgumentError(`container id "${containerId}" cannot be used in a cgroup name`);
  }
  const p = parent === '' ? DEFAULT_CGROUP_PARENT : parent;
  if (p.includes('\0') || p.split('/').includes('..')) throw new InvalidArgumentError(`cgroupParent "${parent}" must not contain ".."`);
  const base = posix.basename(p);
  if (base.endsWith('.slice')) return `${base}:crib:${containerId}`;
  if (!p.startsWith('/')) throw new InvalidArgumentError(`cgroupParent "${parent}" must be an absolute cgroup path or a systemd slice`);
  return posix.join(posix.normalize(p), `crib-${containerId}`);
}
