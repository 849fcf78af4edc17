// A pod's link to the bridge: a veth pair whose host end (crib<8 hex of the pod id>) is a bridge
// port and whose other end is created directly inside the pod's network namespace as eth0, so no
// temporary name ever exists on the host. Address and routes are set from inside the namespace by
// `crib-pinns netns-exec` (the daemon itself never joins a namespace).
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { nativeBinaries } from '../native-paths.js';
import { deleteLink, isMissingDevice } from './bridge.js';
import { CommandError, runCommand } from '../sys/command.js';

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
  netnsPath: string;
  bridge: string;
  /** One per IP family the pod has. */
  addresses: readonly PodAddress[];
  mtu: number;
}

/** Run `ip` inside a pinned network namespace. */
export function ipInNetns(netnsPath: string, args: readonly string[], input?: string): Promise<string> {
  return runCommand(nativeBinaries.pinns, ['netns-exec', netnsPath, 'ip', ...args], { input });
}

export async function attachPod(opts: AttachOptions): Promise<string> {
  const hostIf = hostVethName(opts.podId);
  const mtu = String(opts.mtu);
  const add = () =>
    runCommand('ip', ['link', 'add', hostIf, 'mtu', mtu, 'master', opts.bridge, 'up', 'type', 'veth',
      'peer', 'name', POD_INTERFACE, 'mtu', mtu, 'netns', opts.netnsPath]);
  try {
    await add();
  } catch (err) {
    // A setup retried after a crash finds its old veth: replace it rather than fail.
    if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw err;
    await deleteLink(hostIf);
    await ipInNetns(opts.netnsPath, ['link', 'del', POD_INTERFACE]).catch((e: unknown) => {
      if (!isMissingDevice(e)) throw e;
    });
    await add();
  }
  try {
    // With br_netfilter, a pod's packet DNATed back to the same pod (its own hostPort) leaves by
    // the port it came in on; the bridge drops that unless the port is in hairpin mode.
    await writeFile(`/sys/class/net/${hostIf}/brport/hairpin_mode`, '1');
    // nodad: the pod's IPv6 address is unique by IPAM, and DAD would keep it unusable for ~1 s.
    await ipInNetns(opts.netnsPath, ['-batch', '-'], [
      ...opts.addresses.map((a) => `addr add ${a.ip}/${a.prefixLength} dev ${POD_INTERFACE}${a.family === 6 ? ' nodad' : ''}`),
      `link set dev ${POD_INTERFACE} up`,
      ...opts.addresses.map((a) => `route add default via ${a.gateway} dev ${POD_INTERFACE}`),
      '',
    ].join('\n'));
  } catch (err) {
    await deleteLink(hostIf);
    throw err;
  }
  return hostIf;
}

/** Remove the pod's veth pair (deleting one end deletes both); fine when it is already gone. */
export async function detachPod(podId: string): Promise<void> {
  await deleteLink(hostVethName(podId));
}
