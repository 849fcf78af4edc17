// A pod's link to the bridge: a veth pair whose host end (crib<8 hex of the pod id>) is a bridge
// port in hairpin mode and whose other end is created directly inside the pod's network
// namespace as eth0, with the pod's addresses and default routes. crib-pinns does all of it over
// rtnetlink in one process (native/pinns/pod-net.c): no `ip` runs on a pod's path, and the
// daemon itself never joins a namespace. The same options attach a pod while its namespaces are
// pinned (podNetArgs), so RunPodSandbox costs one helper process. The pod's host-port rules ride
// along in the same process (extra options from host-ports.ts): made after the veth, removed
// before it.
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

/**
 * Attach the pod whose network namespace is pinned at netnsPath, with its host ports
 * (HostPorts.reserve's options); returns the host interface.
 */
export async function attachPod(netnsPath: string, opts: AttachOptions, hostPortArgs: readonly string[] = []): Promise<string> {
  await runCommand(nativeBinaries.pinns, ['pod-net', 'attach', '--netns', netnsPath, ...podNetArgs(opts), ...hostPortArgs]);
  return hostVethName(opts.podId);
}

/** Written by crib-pinns on its stdout once the host-port rules are removed (pinns.h). */
const PORTS_REMOVED = 'host ports removed\n';

export interface Detach {
  /** The host-port rules are gone (at once without host-port options); rejects like done if not. */
  portsRemoved: Promise<void>;
  /** The veth is gone too. */
  done: Promise<void>;
}

/**
 * Remove the pod's host-port rules (HostPorts.removalArgs's options), then its veth pair
 * (deleting one end deletes both), in one crib-pinns; fine when they are already gone. The
 * kernel answers the veth delete only after an RCU barrier (15-30 ms), which callers need not
 * wait for on an RPC: portsRemoved settles as soon as the rules are gone.
 */
export function detachPod(podId: string, hostPortArgs: readonly string[] = []): Detach {
  let reported: () => void = () => undefined;
  const reportedPromise = new Promise<void>((resolve) => (reported = resolve));
  let out = '';
  const done = runCommand(nativeBinaries.pinns, ['pod-net', 'detach', '--host-if', hostVethName(podId), ...hostPortArgs], {
    onStdout: (chunk) => {
      out = (out + chunk).slice(-PORTS_REMOVED.length * 2); // bounded: only the line matters
      if (out.includes(PORTS_REMOVED)) reported();
    },
  }).then(() => undefined);
  const portsRemoved = hostPortArgs.length === 0 ? Promise.resolve() : Promise.race([reportedPromise, done]);
  // Callers that only wait for done must not leave this one's rejection unhandled.
  portsRemoved.catch(() => undefined);
  return { portsRemoved, done };
}
