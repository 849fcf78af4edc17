// A pod sandbox as crib persists it.
//
//   creating ──► ready ──► notready ──► (removed)
//       │                     ▲
//       └── failed: rolled back, record removed (or cleaned at start-up after a crash)
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import type { PodNetworkStatus } from '../network/pod-networking.js';
import type { PodFiles } from './pod-files.js';
import type { PodUserNamespace } from './user-namespace.js';
import { defineSchema } from '../store/schema.js';

export type SandboxState = 'creating' | 'ready' | 'notready';

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
  files?: PodFiles;
  network?: PodNetworkStatus;
  /** What kubelet last said the pod's overhead and summed container resources are. */
  resources?: { overhead: LinuxContainerResources__Output | null; resources: LinuxContainerResources__Output | null };
}

export function reservedPodName(config: PodSandboxConfig__Output): string {
  const m = config.metadata!;
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

/** The on-disk schema of <root>/pods/<id>.json (see store/schema.ts to change it). */
export const SANDBOX_RECORD = defineSchema<SandboxRecord>('pod sandbox record');
