// A pod's user namespace (KEP-127, NamespaceOption.usernsOptions): which mode kubelet asked for,
// and the uid/gid maps it allocated, checked before anything is made. crib-pinns checks them
// again (it writes them as host root); these checks give kubelet the messages.
//
// Modes, as containerd and CRI-O treat them: NODE (or no options) is the host's user
// namespace, as before; POD is one namespace for the whole pod, pinned with its other
// namespaces; CONTAINER and TARGET are refused (the CRI says only POD and NODE are meant, and a
// namespace per container could not own the pod's shared network namespace).
import { InvalidArgumentError } from '../errors.js';
import type { IDMapping__Output } from '../gen/runtime/v1/IDMapping.js';
import type { UserNamespace__Output } from '../gen/runtime/v1/UserNamespace.js';

/** One range: container ids [containerId, +length) are host ids [hostId, +length). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  length: number;
}

export interface PodUserNamespace {
  uids: IdMapping[];
  gids: IdMapping[];
}

/** Lines per map: kubelet sends one; the kernel takes 340; crib-pinns takes this many. */
export const MAX_ID_MAPPINGS = 64;
/** Ids are 32 bits and 4294967295 is (uid_t)-1, which cannot be mapped. */
const ID_END = 0xffff_ffff;

function checkMappings(list: IDMapping__Output[], field: string): IdMapping[] {
  if (list.length === 0) throw new InvalidArgumentError(`${field}: mode POD needs at least one mapping`);
  if (list.length > MAX_ID_MAPPINGS) throw new InvalidArgumentError(`${field}: ${list.length} mappings, at most ${MAX_ID_MAPPINGS}`);
  const out: IdMapping[] = [];
  for (const [i, m] of list.entries()) {
    const at = `${field}[${i}] (containerId ${m.containerId}, hostId ${m.hostId}, length ${m.length})`;
    for (const v of [m.containerId, m.hostId, m.length]) {
      if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${at}: ids and length must be unsigned integers`);
    }
    if (m.length === 0) throw new InvalidArgumentError(`${at}: length must not be 0`);
    if (m.containerId + m.length > ID_END || m.hostId + m.length > ID_END)
      throw new InvalidArgumentError(`${at}: the range passes id ${ID_END - 1}`);
    // Host id 0 is the node's root: a pod mapping it would own every root-owned file on the node.
    // kubelet never allocates it (its ranges start at a multiple of 65536, never the first).
    if (m.hostId === 0) throw new InvalidArgumentError(`${at}: maps the node's root (host id 0); refusing`);
    for (const o of out) {
      if (m.containerId < o.containerId + o.length && o.containerId < m.containerId + m.length)
        throw new InvalidArgumentError(`${at}: its container ids overlap containerId ${o.containerId} length ${o.length}`);
      if (m.hostId < o.hostId + o.length && o.hostId < m.hostId + m.length)
        throw new InvalidArgumentError(`${at}: its host ids overlap hostId ${o.hostId} length ${o.length}`);
    }
    out.push({ containerId: m.containerId, hostId: m.hostId, length: m.length });
  }
  if (!out.some((m) => m.containerId === 0))
    throw new InvalidArgumentError(`${field}: container id 0 must be mapped (the pod's root)`);
  return out;
}

/**
 * The pod's user namespace from its sandbox options: undefined for the host's (NODE or none);
 * InvalidArgumentError for CONTAINER/TARGET or bad mappings.
 */
export function podUserNamespace(opts: UserNamespace__Output | null | undefined, field: string): PodUserNamespace | undefined {
  if (!opts || opts.mode === 'NODE') return undefined;
  if (opts.mode !== 'POD') {
    throw new InvalidArgumentError(
      `${field}.mode ${String(opts.mode)}: a user namespace is per pod (POD) or the node's (NODE); ` +
        'one per container is not supported, as in containerd and CRI-O');
  }
  return { uids: checkMappings(opts.uids, `${field}.uids`), gids: checkMappings(opts.gids, `${field}.gids`) };
}

/** The mapping as crib-pinns takes it: "INSIDE:OUTSIDE:COUNT". */
export function pinnsMapArg(m: IdMapping): string {
  return `${m.containerId}:${m.hostId}:${m.length}`;
}

/** Where a container id lands on the host, or undefined when the pod does not map it. */
export function hostIdOf(mappings: IdMapping[], containerId: number): number | undefined {
  const m = mappings.find((r) => containerId >= r.containerId && containerId < r.containerId + r.length);
  return m ? m.hostId + (containerId - m.containerId) : undefined;
}

/** Whether two mapping lists are the same ranges (order aside). */
export function sameMappings(a: IdMapping[], b: IdMapping[]): boolean {
  const key = (l: IdMapping[]) => l.map((m) => `${m.containerId}:${m.hostId}:${m.length}`).sort().join(',');
  return key(a) === key(b);
}

/** How a container rootfs of this pod is mounted: idmapped with its namespace, owned by its root. */
export function idmappedRootfs(userns: { path: string } & PodUserNamespace): { usernsPath: string; rootUid: number; rootGid: number } {
  // Both are mapped: podUserNamespace() insists on container id 0.
  return { usernsPath: userns.path, rootUid: hostIdOf(userns.uids, 0)!, rootGid: hostIdOf(userns.gids, 0)! };
}
