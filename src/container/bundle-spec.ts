// Changes to a created container's bundle spec (config.json) between CreateContainer, which
// writes it, and StartContainer, where the runtime reads it (the runtime's create runs there, as
// in containerd). Each change is one atomic rewrite: the runtime reads the old spec or the new.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { OciSpec } from './oci-spec/oci-types.js';
import type { ResourceLimits } from './oci-spec/resources.js';

/**
 * The PID namespace path a TARGET-mode container's spec has until StartContainer: the namespace
 * is opened, and its path (a descriptor of the daemon's) written in, just before the runtime's
 * create. A spec never rewritten fails in the runtime (no such file) instead of joining anything.
 */
export const TARGET_PIDNS_PLACEHOLDER = '/nonexistent/crib-target-pid-namespace-is-opened-at-start';

async function rewrite(specPath: string, change: (spec: OciSpec) => void): Promise<void> {
  const spec = JSON.parse(await readFile(specPath, 'utf8')) as OciSpec;
  change(spec);
  await writeFileAtomic(specPath, JSON.stringify(spec), 0o600, { syncDir: false });
}

/** Points the spec's pid namespace at `nsPath` (a held namespace: target-pidns.ts). */
export async function pointSpecAtPidNamespace(specPath: string, nsPath: string): Promise<void> {
  await rewrite(specPath, (spec) => {
    const pid = spec.linux.namespaces.find((n) => n.type === 'pid');
    if (!pid) throw new Error(`${specPath} has no pid namespace to point at the target's`);
    pid.path = nsPath;
  });
}

/**
 * UpdateContainerResources before the runtime knows the container: the limits go into the spec
 * the runtime's create reads. As the runtime's update does, only the kinds of limit given change
 * (the devices rules stay).
 */
export async function applyResourcesToSpec(specPath: string, limits: ResourceLimits): Promise<void> {
  await rewrite(specPath, (spec) => {
    spec.linux.resources = { ...(spec.linux.resources ?? {}), ...limits };
  });
}
