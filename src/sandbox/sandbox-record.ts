// A pod sandbox as crib persists it. Every multi-step change writes its intent (a state) first,
// does its side effects, and writes the result last, so that whatever a crash interrupts,
// start-up (SandboxService.recover) can finish or undo it:
//
//   creating ──► ready ──► stopping ──► notready ──► removing ──► (record gone)
//      │           │                                    ▲
//      │           └───────────── remove ───────────────┘  (RemovePodSandbox without a stop)
//      └── failed, or found at start-up: rolled back, record removed
//
//   creating  RunPodSandbox. The record is written before anything exists; the namespace paths
//             and the pod init's pid + start time are written as soon as they exist (before
//             the network). Start-up rolls it back: kills the pod init (by its recorded pid, or
//             found by the pod's pinned namespaces when the crash came before the pid was
//             written), tears down the network (by pod id), unpins the namespaces, removes the
//             dir and the record. kubelet's retry then creates the pod anew.
//   ready     serving; the only state reported SANDBOX_READY (with its IP).
//   stopping  StopPodSandbox: containers stopped, pod init killed, network torn down, then
//             notready, and once that is in place the namespaces and shm unmounted. Start-up
//             finishes it. Reported NOTREADY, without an IP, from the moment it is written: the
//             network may already be gone.
//   notready  stopped: no network, no pod init, namespaces and shm unmounted (their files stay
//             until the removal; start-up unmounts what a crash between the record and the
//             unmounts left, and the next stop or the removal what an unmount failing left).
//   removing  RemovePodSandbox of a pod still holding its network (not stopped first): written
//             before the network is torn down. A notready pod skips it (nothing of the pod
//             changes before its record goes, and each container's removal is durable on its
//             own). Then: containers removed, network torn down, pod init killed, the record
//             removed (synced: the removal is durable), namespaces and shm unmounted (if a stop
//             has not), and the dir moved to the trash (store/trash.ts) whose files (the pinned
//             ones too) are deleted after the answer. Start-up finishes a 'removing' record
//             (reported NOTREADY until then), unpins and deletes a pod dir left without a
//             record, and empties the trash.
//
// Schema: the states stopping and removing and the field podInitStartTime were added without a
// version bump: records of the crib before them load unchanged, and a crib before them that
// reads one reports it NOTREADY and finishes it on kubelet's next StopPodSandbox or
// RemovePodSandbox (it only skips pods already notready).
//
// Version 2 added selinuxLevel, the pod's MCS level chosen unique among live pods (mcs-levels.ts).
// It bumped the version because a crib before it, reading such a record, would give the pod's
// next containers its hash level, not the recorded one: it must refuse the record instead. The
// migration from version 1 records the level that crib gave the pod's containers: the pod id's
// hash, unless the pod's selinuxOptions name a level (then the pod has no level of its own). It
// does so whether or not the node runs SELinux (a migration is pure and cannot ask); the level is
// only used, and only matters, where it does.
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import type { PodNetworkStatus } from '../network/pod-networking.js';
import type { PodFiles } from './pod-files.js';
import type { PodUserNamespace } from './user-namespace.js';
import { podLevel } from './mcs-levels.js';
import { defineSchema, type JsonObject } from '../store/schema.js';

export type SandboxState = 'creating' | 'ready' | 'stopping' | 'notready' | 'removing';

export interface SandboxRecord {
  id: string;
  /** The reservation key: name_namespace_uid_attempt. */
  reservedName: string;
  config: PodSandboxConfig__Output;
  runtimeHandler: string;
  state: SandboxState;
  /** Nanoseconds since the epoch, as a decimal string (CRI int64). */
  createdAt: string;
  /** Per-pod dir under the state dir: pinned namespaces, hosts, resolv.conf, shm. */
  dir: string;
  hostname: string;
  hostNetwork: boolean;
  netnsPath?: string;
  ipcnsPath?: string;
  utsnsPath?: string;
  /** The pod's pinned user namespace (usernsOptions POD), with the maps it was made with. */
  userns?: { path: string } & PodUserNamespace;
  podInitPid?: number;
  /** Start time (/proc/<pid>/stat) of podInitPid: a pid alone may be reused by then. */
  podInitStartTime?: string;
  files?: PodFiles;
  network?: PodNetworkStatus;
  /**
   * The pod's MCS level (s0:cA,cB), held by no other live pod: what its containers run at when
   * neither they nor the pod give a selinuxOptions level. Chosen at RunPodSandbox when the node
   * runs SELinux and the pod's selinuxOptions give no level; absent otherwise.
   */
  selinuxLevel?: string;
  /** What kubelet last said the pod's overhead and summed container resources are. */
  resources?: { overhead: LinuxContainerResources__Output | null; resources: LinuxContainerResources__Output | null };
}

export function reservedPodName(config: PodSandboxConfig__Output): string {
  const m = config.metadata!;
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

/** The on-disk schema of <root>/pods/<id>.json (see store/schema.ts to change it). */
export const SANDBOX_RECORD = defineSchema<SandboxRecord>('pod sandbox record', {
  version: 2,
  migrations: { 1: withHashLevel },
});

/** Version 1 → 2: the level a version-1 crib gave the pod's containers, now recorded. */
function withHashLevel(doc: JsonObject): JsonObject {
  const config = doc.config as PodSandboxConfig__Output | undefined;
  if (typeof doc.id !== 'string') throw new Error('the record has no id');
  if (config?.linux?.securityContext?.selinuxOptions?.level) return doc;
  return { ...doc, selinuxLevel: podLevel(doc.id) };
}
