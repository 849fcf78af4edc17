// A pod's link to the bridge: a veth pair whose host end (crib<8 hex of the pod id>) is a bridge
// port in hairpin mode and whose other end is created directly inside the pod's network
// namespace as eth0, with the pod's addresses and default routes. crib-pinns does all of it over
// rtnetlink in one process (native/pinns/pod-net.c): no `ip` runs on a pod's path, and the
// daemon itself never joins a namespace. The same options attach a pod while its namespaces are
// pinned (podNetArgs), so RunPodSandbox costs one helper process.
import { createHash } from 'node:crypto';
import { nativeBinaries } from '../native-paths.js';
import { runCommand } from '../sys/command.js';

export const POD_INTERFACE = 'eth0';

export function hostVethName(podId: string): string {
  return `crib${createHash('sha256').update(podId).digest('hex').slice(0, 8)}`;
}

export interface PodAddress {
  family: 4 | 6;
  ip: string;
  prefixLength: number;
  gateway: string;
}

export interface AttachOptions {
  podId: string;
  bridge: string;
  /** One per IP family the pod has. */
  addresses: readonly PodAddress[];
  mtu: number;
}

/**
 * crib-pinns options attaching a pod (after `pod-net attach --netns FILE`, or beside `--net` when
 * pinning). A veth of the same name (a setup a crash interrupted) is replaced by crib-pinns.
 */
export function podNetArgs(opts: AttachOptions): string[] {
  const args = ['--bridge', opts.bridge, '--host-if', hostVethName(opts.podId), '--mtu', String(opts.mtu)];
  // nodad: the pod's IPv6 address is unique by IPAM, and DAD would keep it unusable for ~1 s.
  for (const a of opts.addresses) args.push('--addr', `${a.ip}/${a.prefixLength}${a.family === 6 ? ',nodad' : ''}`);
  for (const a of opts.addresses) args.push('--gw', a.gateway);
  return args;
}

/** Attach the pod whose network namespace is pinned at netnsPath; returns the host interface. */
export async function attachPod(netnsPath: string, opts: AttachOptions): Promise<string> {
  await runCommand(nativeBinaries.pinns, ['pod-net', 'attach', '--netns', netnsPath, ...podNetArgs(opts)]);
  return hostVethName(opts.podId);
}

/**
 * Remove the pod's veth pair (deleting one end deletes both); fine when it is already gone. The
 * kernel answers only after an RCU barrier (15-30 ms), so callers do not wait for it on an RPC.
 */
export async function detachPod(podId: string): Promise<void> {
  await runCommand(nativeBinaries.pinns, ['pod-net', 'detach', '--host-if', hostVethName(podId)]);
}
