// A container as crib persists it. The CRI state is derived from the timestamps, as containerd
// does: created (createdAt), running (startedAt), exited (finishedAt).
//
//   creating ──► created ──start──► running ──exit/stop──► exited ──► (removed)
//       │                                    (monitor writes the exit file, even with the
//       └── failed: rolled back                daemon down; the daemon reads it back)
import { join } from 'node:path';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import { defineSchema } from '../store/schema.js';

export interface ContainerRecord {
  id: string;
  podId: string;
  reservedName: string;
  config: ContainerConfig__Output;
  /** The image id (config digest) and the name the container was created from. */
  imageId: string;
  imageName: string;
  runtimeHandler: string;
  /** true once the create finished; a record still false at start-up is rolled back. */
  created: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  pid?: number;
  monitorPid?: number;
  /** Container dir under the state dir: bundle, rootfs mount point, exit file, sockets. */
  dir: string;
  logPath: string;
  stopSignal?: string;
  /** The OCI spec's linux.cgroupsPath, for stats. */
  cgroupsPath?: string;
  /** The identity the container's processes run as (ContainerStatus.user). */
  user?: { uid: number; gid: number; additionalGids: number[] };
}

export type CriContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export function criState(rec: ContainerRecord): CriContainerState {
  if (!rec.created) return 'CONTAINER_UNKNOWN';
  if (rec.finishedAt) return 'CONTAINER_EXITED';
  if (rec.startedAt) return 'CONTAINER_RUNNING';
  return 'CONTAINER_CREATED';
}

export function reservedContainerName(podId: string, config: ContainerConfig__Output): string {
  return `${podId}_${config.metadata!.name}_${config.metadata!.attempt}`;
}

export const containerPaths = (dir: string) => ({
  bundle: join(dir, 'bundle'),
  rootfs: join(dir, 'bundle', 'rootfs'),
  exitFile: join(dir, 'exit.json'),
  attachSocket: join(dir, 'attach.sock'),
  ctl: join(dir, 'ctl'),
});

/** The on-disk schema of <root>/containers/<id>.json (see store/schema.ts to change it). */
export const CONTAINER_RECORD = defineSchema<ContainerRecord>('container record');
