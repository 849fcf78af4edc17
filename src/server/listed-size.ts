// Keeping every list under the gRPC message limit. ListPodSandbox, ListContainers and the stats
// lists answer with one message holding every object, and a message over 16 MiB fails the call
// for every client (two pods with 9 MiB of annotations once broke ListPodSandbox for all of
// kubelet). Per-object limits alone cannot prevent it: the API server allows 256 KiB of
// annotations per pod, and 64 such pods already fill a message. So crib keeps a node-wide budget:
// each pod and container is charged an upper bound of what it adds to the largest message it
// appears in (its ids, state, stats figures, metadata, labels, annotations, image, mounts...),
// and RunPodSandbox / CreateContainer are refused with RESOURCE_EXHAUSTED while the sum would go
// over limits.max_listed_bytes. Removing pods or containers frees their share.
import { ResourceExhaustedError } from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import { LIMIT_KEYS } from './cri-limits.js';

/** Interfaces reported per pod in stats and metrics: what POD_FIXED_BYTES has room for. */
export const MAX_REPORTED_INTERFACES = 16;
/**
 * What a pod adds besides the strings it was given: two 64-hex ids, state and timestamps, IPs,
 * namespace options, and its stats (CPU, memory, process and up to 16 interfaces' network
 * figures) with their framing — about 1.4 KiB measured, rounded up.
 */
const POD_FIXED_BYTES = 2048;
/** The same for a container: ids, image ids, state, timestamps, exit reason, user, stats. */
const CONTAINER_FIXED_BYTES = 1024;
/** A protobuf string field's tag and length prefix, for strings under 2 MiB. */
const FIELD_OVERHEAD = 4;
/** An image id as a string field: "sha256:" and 64 hex digits. */
const IMAGE_ID_BYTES = 71 + FIELD_OVERHEAD;
/** A map entry: the entry's tag and length, then the key's and the value's. */
const MAP_ENTRY_OVERHEAD = 12;

const str = (s: string | undefined | null): number => (s ? Buffer.byteLength(s) : 0) + FIELD_OVERHEAD;

function map(m: Record<string, string> | undefined | null): number {
  let n = 0;
  for (const [k, v] of Object.entries(m ?? {})) n += Buffer.byteLength(k) + Buffer.byteLength(v) + MAP_ENTRY_OVERHEAD;
  return n;
}

/** Upper bound of what a pod adds to ListPodSandbox, PodSandboxStatus and ListPodSandboxStats. */
export function podListedBytes(config: PodSandboxConfig__Output, runtimeHandler: string): number {
  const m = config.metadata;
  return POD_FIXED_BYTES + str(m?.name) + str(m?.namespace) + str(m?.uid) + str(runtimeHandler)
    + map(config.labels) + map(config.annotations);
}

/**
 * Upper bound of what a container adds to ListContainers, ContainerStatus (inside
 * PodSandboxStatus) and the stats lists; `logPath` is the full path its status reports.
 */
export function containerListedBytes(config: ContainerConfig__Output, logPath: string): number {
  const image = config.image;
  let n = CONTAINER_FIXED_BYTES + str(config.metadata?.name) + map(config.labels) + map(config.annotations) + str(logPath);
  // The image spec appears in both `image` and the status; the name also as imageRef's peer.
  n += str(image?.image) + str(image?.userSpecifiedImage) + str(image?.runtimeHandler) + map(image?.annotations);
  for (const mount of config.mounts) {
    n += str(mount.containerPath) + str(mount.hostPath) + str(mount.imageSubPath) + str(mount.image?.image) + 16;
    // An image volume's status also names its image's id (ImageSpec.image_ref: "sha256:" + 64 hex).
    if (mount.image?.image) n += str(mount.image.userSpecifiedImage) + str(mount.image.runtimeHandler) + map(mount.image.annotations) + IMAGE_ID_BYTES;
    n += (mount.uidMappings.length + mount.gidMappings.length) * 20;
  }
  const r = config.linux?.resources;
  if (r) n += 128 + str(r.cpusetCpus) + str(r.cpusetMems) + map(r.unified) + r.hugepageLimits.length * 32;
  n += (config.linux?.securityContext?.supplementalGroups.length ?? 0) * 12;
  return n;
}

export interface ListedObject {
  id: string;
  /** The stored config object: a changed record has a new one, which is charged afresh. */
  config: object;
  bytes: () => number;
}

/** The node-wide budget; `objects` lists every pod and container as stored right now. */
export class ListedBudget {
  private readonly charged = new Map<string, { config: object; bytes: number }>();
  private reserved = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly objects: () => Iterable<ListedObject>,
  ) {}

  /** Bytes charged to what is stored now, plus creations in flight. */
  used(): number {
    const seen = new Set<string>();
    let total = this.reserved;
    for (const o of this.objects()) {
      seen.add(o.id);
      let entry = this.charged.get(o.id);
      if (!entry || entry.config !== o.config) {
        entry = { config: o.config, bytes: o.bytes() };
        this.charged.set(o.id, entry);
      }
      total += entry.bytes;
    }
    for (const id of this.charged.keys()) if (!seen.has(id)) this.charged.delete(id);
    return total;
  }

  /**
   * Run a creation charged `bytes` up front, refused when the budget cannot take it. The
   * reservation holds until `create` settles; by then the new record (if any) is stored and
   * charged on its own, so concurrent creations can never overshoot together.
   */
  async charge<T>(rpc: string, what: string, bytes: number, create: () => Promise<T>): Promise<T> {
    // Nothing added (an update that does not grow the listing) is never refused.
    if (bytes <= 0) return create();
    const used = this.used();
    if (used + bytes > this.maxBytes) {
      throw new ResourceExhaustedError(
        `${rpc}: this ${what} would be listed with ${bytes} bytes of metadata, and the pods and containers on this node ` +
        `already take ${used} of the ${this.maxBytes} bytes every list must fit in (${LIMIT_KEYS.maxListedBytes}): ` +
        'remove pods or containers, or make their labels and annotations smaller');
    }
    this.reserved += bytes;
    try {
      return await create();
    } finally {
      this.reserved -= bytes;
    }
  }
}
