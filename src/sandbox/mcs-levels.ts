// Each pod's MCS level (a category pair, s0:cA,cB) must be its own among the live pods: under an
// enforcing policy, container_t processes and container_file_t files at the same level are one
// security domain, so two pods sharing a pair could read and write each other's files. A hash
// of the pod id alone collides (about 1% for 110 pods among 523,776 pairs), so the level is
// chosen here, at RunPodSandbox, against the levels live pods hold, and kept in the pod's
// record (containerd and CRI-O reserve pairs the same way, in go-selinux).
//
// The candidates are deterministic: the pod id's hash first (the level a crib before this one
// would have given the pod), then rehashes of the id with a counter, then every pair in order,
// so a pod gets a level as long as any pair is free.
import { createHash } from 'node:crypto';
import { ResourceExhaustedError } from '../errors.js';

/** Categories c0..c1023: the targeted policy's MCS range, and go-selinux's default. */
export const CATEGORIES = 1024;
/**
 * One category pair (c0..c1023, distinct, low first) from a hash of `podId`: the first level
 * offered to a pod (below), and the level a pod recorded without one runs at.
 */
export function podLevel(podId: string): string {
  const h = createHash('sha256').update(podId).digest();
  const a = h.readUInt16BE(0) % CATEGORIES;
  let b = h.readUInt16BE(2) % CATEGORIES;
  if (b === a) b = (a + 1) % CATEGORIES;
  return `s0:c${Math.min(a, b)},c${Math.max(a, b)}`;
}

/** How many rehashes are tried before the sweep over every pair. */
const REHASHES = 64;

/** The levels offered to a pod, best first; the allocator takes the first one not held. */
export type LevelCandidates = (podId: string) => Iterable<string>;

/** The hash level, then rehashes with a counter, then every pair (low category first). */
export function* hashedCandidates(podId: string): Iterable<string> {
  yield podLevel(podId);
  for (let n = 1; n <= REHASHES; n++) yield podLevel(`${podId}/${n}`);
  for (let a = 0; a < CATEGORIES; a++) {
    for (let b = a + 1; b < CATEGORIES; b++) yield `s0:c${a},c${b}`;
  }
}

export class McsLevels {
  /** level → the pods that hold it. More than one only for records of a crib before this one. */
  private readonly holders = new Map<string, Set<string>>();
  private readonly byPod = new Map<string, string>();

  constructor(private readonly candidates: LevelCandidates = hashedCandidates) {}

  /**
   * Mark `level` as `podId`'s (a pod found at start-up, or one whose selinuxOptions name its
   * level): later allocations avoid it. A level held already is recorded as shared, not
   * refused: pods recorded before levels were unique may share one, and both must keep it.
   */
  reserve(podId: string, level: string): void {
    this.release(podId);
    let pods = this.holders.get(level);
    if (!pods) this.holders.set(level, (pods = new Set()));
    pods.add(podId);
    this.byPod.set(podId, level);
  }

  /**
   * The first candidate level no live pod holds, reserved for `podId`. Synchronous, so two
   * RunPodSandbox calls cannot both take one pair.
   */
  allocate(podId: string): string {
    for (const level of this.candidates(podId)) {
      if (!this.holders.has(level)) {
        this.reserve(podId, level);
        return level;
      }
    }
    throw new ResourceExhaustedError(
      `RunPodSandbox: no SELinux MCS level is free for pod ${podId}: all ${this.holders.size} category pairs are held by live pods; remove pods to free one`);
  }

  /** The pod is gone: its level is free again (once no other pod shares it). */
  release(podId: string): void {
    const level = this.byPod.get(podId);
    if (level === undefined) return;
    this.byPod.delete(podId);
    const pods = this.holders.get(level)!;
    pods.delete(podId);
    if (pods.size === 0) this.holders.delete(level);
  }

  levelOf(podId: string): string | undefined {
    return this.byPod.get(podId);
  }
}
