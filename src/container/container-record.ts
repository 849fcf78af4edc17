// A container as crib persists it. The CRI state is derived from the timestamps, as containerd
// does: created (createdAt), running (startedAt), exited (finishedAt). Every multi-step change
// records its intent first and its result last, so that start-up can finish or undo it:
//
//   creating ─────► created ──► starting ──► running ──exit──► exited ──► removing ──► (gone)
//   (created:false)    ▲     (intent start)                              (intent remove)
//                      └── still parked ───┘
//
//   creating  CreateContainer: the record (created:false) is written before anything exists;
//             then the writable layer, its mount, the bundle (config.json); created:true last.
//             A failure or a crash rolls it back: nothing of it is left. Nothing runs for a
//             created container: the runtime's create is StartContainer's, as in containerd.
//   starting  StartContainer has the monitor run the runtime's create (the parked process),
//             writes the intent with the pids, has the runtime release the process, then
//             records startedAt. A failure undoes the runtime's part (killed, deleted): CREATED
//             again, without a process. Start-up: a created record without pids may be a start
//             interrupted before they were recorded, whose monitor and runtime state (found by
//             the id) are killed and deleted: CREATED, for kubelet to start. With pids it asks the
//             runtime:
//             a process released (running, or exited since) was started, and is RUNNING (or
//             EXITED); one still parked was not, and is CREATED (with its parked process) for
//             kubelet to start. A runtime start that finds the process already released (a start
//             the crashed daemon left running) counts as the start. Containers an older daemon
//             created have their monitor and parked process from CreateContainer: they start
//             the same way (release only).
//   running   the exit arrives from the monitor as an event (or from its exit file after a
//             restart). A monitor that died is found at once (its control socket closes): a
//             process still running is killed and recorded EXITED 137; one already gone is
//             EXITED 255. Either message says the monitor died. StopContainer has no intent:
//             its signal either reached the process (the exit arrives as above) or did not (it
//             still runs, and is reported RUNNING).
//   exited    recorded in memory at once (reads answer from memory); written to disk as soon
//             as the disk takes it, retried while it does not; then the monitor is told it may go.
//   removing  RemoveContainer renames the record to <id>.json.removing (container-records.ts),
//             answers, and deletes the remains in the background (runtime delete, unmount,
//             writable layer, dir, marker); the pod's removal waits for them. Start-up finishes
//             what a crash left (a marker, or a record with a remove intent as older daemons
//             wrote). Created containers (never started) can be removed too, and an exit of a
//             never-started one counts as started at its creation.
import { join } from 'node:path';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import { defineSchema } from '../store/schema.js';
import type { ImageVolumeRecord } from './image-volumes.js';

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
  /** Absent while CREATED (set by StartContainer), except in records of older daemons. */
  pid?: number;
  monitorPid?: number;
  /** Start times (/proc/<pid>/stat) of pid and monitorPid: a pid alone may be reused. Records
   * written before they were kept have none. */
  pidStartTime?: string;
  monitorStartTime?: string;
  /** A multi-step change in progress (see the diagram above); `at` in ns since the epoch. */
  intent?: { kind: 'start' | 'remove'; at: string };
  /** Container dir under the state dir: the bundle (ours) and the runtime's files (exit file,
   * sockets: runtime/runtime-files.ts). */
  dir: string;
  logPath: string;
  stopSignal?: string;
  /** The OCI spec's linux.cgroupsPath, for stats. */
  cgroupsPath?: string;
  /** The identity the container's processes run as (ContainerStatus.user). */
  user?: { uid: number; gid: number; additionalGids: number[] };
  /**
   * Its image volumes (CRI mounts with `image` set), written with the creation intent before
   * anything is mounted, so a rollback or removal knows what to unmount and release. Records
   * without it (older ones included) have none: an optional field, so the schema stays at 1.
   */
  imageVolumes?: ImageVolumeRecord[];
  /**
   * Created from a checkpoint archive (CreateContainer's image was one): the CRIU images,
   * unpacked in the container dir. Like every container this daemon creates, it has no monitor
   * nor process while CREATED: StartContainer has the runtime restore the checkpointed
   * processes (pid and monitor recorded then) instead of creating a parked one. Optional, so
   * the schema stays at 1.
   */
  restoreFrom?: string;
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

/** What ContainerService keeps in the container dir; the runtime's files are its own. */
export const containerPaths = (dir: string) => ({
  bundle: join(dir, 'bundle'),
  rootfs: join(dir, 'bundle', 'rootfs'),
});

/** The on-disk schema of <root>/containers/<id>.json (see store/schema.ts to change it). */
export const CONTAINER_RECORD = defineSchema<ContainerRecord>('container record');
