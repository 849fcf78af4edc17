// Which namespaces the container gets. Pod namespaces are pinned files (crib-pinns) that the
// container joins by path; NODE means the host's (no entry); CONTAINER means a fresh one. A
// user-namespaced pod's containers join its user namespace too, with its id maps in the spec
// (as runc wants them when joining one by path).
// Every container has its own mount namespace; a cgroup namespace on cgroup v2 only (on v1 it
// would break the /sys/fs/cgroup layout tools expect, and containerd skips it too).
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import type { NamespaceMode__Output } from '../../gen/runtime/v1/NamespaceMode.js';
import type { NamespaceOption__Output } from '../../gen/runtime/v1/NamespaceOption.js';
import { sameMappings, type IdMapping, type PodUserNamespace } from '../../sandbox/user-namespace.js';
import type { OciIdMapping, OciNamespace } from './oci-types.js';

export interface PodNamespacePaths {
  netnsPath?: string;
  ipcnsPath?: string;
  utsnsPath?: string;
  pidnsPath?: string;
  /** The pod's pinned user namespace and its maps (usernsOptions POD). */
  userns?: { path: string } & PodUserNamespace;
}

export interface NamespaceInput {
  /** TARGET mode (kubectl debug --target): the target container's PID namespace, found by the caller. */
  targetPidnsPath?: string;
  /**
   * The container's namespace options. Null (no security context, as crictl sends) means
   * kubelet's defaults: the pod's network and ipc, a pid namespace of its own.
   */
  options: NamespaceOption__Output | null | undefined;
  pod: PodNamespacePaths;
  cgroupVersion: 1 | 2;
  privileged: boolean;
}

export interface NamespaceResult {
  namespaces: OciNamespace[];
  /** True when the container has its own UTS namespace, so the spec may set its hostname. */
  ownUts: boolean;
  /** linux.uidMappings/gidMappings: the pod's, when the container joins its user namespace. */
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
}

const toOci = (l: IdMapping[]): OciIdMapping[] => l.map((m) => ({ containerID: m.containerId, hostID: m.hostId, size: m.length }));

/**
 * The pod's user namespace, which every container of a user-namespaced pod joins (its network,
 * IPC and UTS namespaces belong to it). kubelet repeats the pod's usernsOptions for each
 * container; anything that disagrees with the pod is refused rather than half-honoured.
 */
function userNamespace(o: NamespaceOption__Output | null | undefined, pod: PodNamespacePaths): PodNamespacePaths['userns'] {
  const u = o?.usernsOptions;
  const field = 'namespaceOptions.usernsOptions';
  if (!u) return pod.userns;
  switch (u.mode) {
    case 'NODE':
      if (pod.userns) throw new InvalidArgumentError(`${field}.mode NODE: the pod runs in its own user namespace, which its containers share`);
      return undefined;
    case 'POD':
      if (!pod.userns) throw new FailedPreconditionError(`${field}.mode POD but the pod sandbox has no user namespace (its usernsOptions were not POD)`);
      if ((u.uids.length > 0 && !sameMappings(u.uids, pod.userns.uids)) || (u.gids.length > 0 && !sameMappings(u.gids, pod.userns.gids)))
        throw new InvalidArgumentError(`${field}: the container's uids/gids differ from the pod's; a pod has one user namespace`);
      return pod.userns;
    default:
      throw new InvalidArgumentError(`${field}.mode ${String(u.mode)}: a user namespace is per pod (POD) or the node's (NODE)`);
  }
}

function entry(type: OciNamespace['type'], mode: NamespaceMode__Output, path: string | undefined, field: string): OciNamespace | undefined {
  switch (mode) {
    case 'NODE':
      return undefined;
    case 'CONTAINER':
      return { type };
    case 'POD':
      if (!path) throw new FailedPreconditionError(`${field} is POD but the pod has no ${type} namespace to join`);
      return { type, path };
    default:
      throw new InvalidArgumentError(`${field} ${String(mode)} is not supported for the ${type} namespace (POD, CONTAINER or NODE)`);
  }
}

export function containerNamespaces(input: NamespaceInput): NamespaceResult {
  const o = input.options;
  // Without any options, follow the pod: its own namespaces when it has them, the host's when
  // it is a host-network/host-IPC pod (critest creates such containers with no options).
  const netMode = o ? o.network : input.pod.netnsPath ? 'POD' : 'NODE';
  const ipcMode = o ? o.ipc : input.pod.ipcnsPath ? 'POD' : 'NODE';
  const pidMode = o ? o.pid : 'CONTAINER';
  const userns = userNamespace(o, input.pod);

  const out: OciNamespace[] = [{ type: 'mount' }];
  if (userns) out.push({ type: 'user', path: userns.path });
  const net = entry('network', netMode, input.pod.netnsPath, 'namespaceOptions.network');
  if (net) out.push(net);
  const ipc = entry('ipc', ipcMode, input.pod.ipcnsPath, 'namespaceOptions.ipc');
  if (ipc) out.push(ipc);

  // CRI has no UTS mode: join the pod's when it has one; a host-network pod has the host's;
  // otherwise the container gets its own.
  let uts: OciNamespace | undefined;
  if (input.pod.utsnsPath) uts = { type: 'uts', path: input.pod.utsnsPath };
  else if (netMode !== 'NODE') uts = { type: 'uts' };
  if (uts) out.push(uts);

  let pid: OciNamespace | undefined;
  if (pidMode === 'TARGET') {
    if (!input.targetPidnsPath) {
      throw new FailedPreconditionError(`namespaceOptions.pid TARGET (targetId "${o?.targetId ?? ''}"): the target container's PID namespace is not known`);
    }
    pid = { type: 'pid', path: input.targetPidnsPath };
  } else {
    pid = entry('pid', pidMode, input.pod.pidnsPath, 'namespaceOptions.pid');
  }
  if (pid) out.push(pid);

  if (input.cgroupVersion === 2 && !input.privileged) out.push({ type: 'cgroup' });
  const result: NamespaceResult = { namespaces: out, ownUts: uts !== undefined && uts.path === undefined };
  if (userns) {
    result.uidMappings = toOci(userns.uids);
    result.gidMappings = toOci(userns.gids);
  }
  return result;
}
