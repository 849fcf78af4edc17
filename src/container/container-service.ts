// Container lifecycle: the writable layer, the OCI spec and the record are ours; the processes
// are the container runtime's (runtime/container-runtime.ts), which tells us when they exit or
// when a monitor dies. States and intents: see container-record.ts.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import {
  DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, errnoCode,
} from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import type { ImageConfig } from '../image/image-config.js';
import type { ImageRecord } from '../image/image-store.js';
import { log } from '../log.js';
import type {
  ContainerRuntime, CreateOptions, ExecSession, ExecSyncResult, ExitRecord, OciProcess, RuntimeEvent, RuntimeRef,
} from '../runtime/container-runtime.js';
import type { RuntimeFeatures } from '../runtime/runtime-features.js';
import { podInitPidNamespace } from '../sandbox/namespaces.js';
import { idmappedRootfs } from '../sandbox/user-namespace.js';
import type { IdmappedRootfs } from '../snapshot/snapshotter.js';
import type { PodContainers } from '../sandbox/sandbox-service.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { allOrFirstError } from '../lifecycle/all-or-first-error.js';
import { BackgroundTasks } from '../lifecycle/background-tasks.js';
import { BoundedWorkQueue } from '../lifecycle/bounded-work-queue.js';
import { Cleaner } from '../lifecycle/cleaner.js';
import { crashPoint } from '../lifecycle/crash-point.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { NameReservations } from '../lifecycle/name-reservations.js';
import { RecordStore } from '../store/record-store.js';
import { Trash } from '../store/trash.js';
import { isoTime, isoToNs, nowNs } from '../time.js';
import { chosenStopSignal, killSignal } from './stop-signal.js';
import type { CdiRegistry } from './cdi/cdi-registry.js';
import { requestedCdiDevices } from './cdi/cdi-requests.js';
import { buildContainerSpec, containerSelinuxLabels, readNodeFacts } from './oci-spec/container-spec.js';
import { type EtcFiles, ImageEtcFilesCache } from './oci-spec/etc-files.js';
import { containerResources } from './oci-spec/resources.js';
import type { OciSpec } from './oci-spec/oci-types.js';
import { ContainerEvents, type ContainerEventType } from './container-events.js';
import { TARGET_PIDNS_PLACEHOLDER, applyResourcesToSpec, pointSpecAtPidNamespace } from './bundle-spec.js';
import { CONTAINER_RECORD, containerPaths, criState, reservedContainerName, type ContainerRecord } from './container-record.js';
import { ContainerRecords } from './container-records.js';
import { ImageVolumes } from './image-volumes.js';
import { holdTargetPidNamespace, stallAfterTargetCheck, type HeldPidNamespace, type TargetInit } from './target-pidns.js';
import {
  isCheckpointArchivePath, readConfigDump, unpackCheckpointArchive, ARCHIVE_LIMITS, DELETED_FILES, type ConfigDump,
} from './checkpoint/checkpoint-archive.js';
import { applyDeletedFiles, type OverlayLayers } from './checkpoint/deleted-files.js';
import { checkedLocation } from './checkpoint/checkpoint-location.js';
import { checkpointContainer, finishInterruptedCheckpoint } from './checkpoint/container-checkpoint.js';
import { applyRootfsDiff } from './checkpoint/rootfs-diff.js';

/** kubelet caps exec output at 16 MiB; so do we. */
const EXEC_SYNC_MAX_OUTPUT = 16 * 1024 * 1024;
/** How long a SIGKILLed container may take to be reported gone. */
const KILL_GRACE_MS = 10_000;
/**
 * Removed containers' remains deleted at once in the background, at most (each is a runtime
 * delete, an unmount that syncs the upper layer, and directory syncs), and how many may be held
 * in all, those waiting their turn included: past it RemoveContainer, and RemovePodSandbox
 * removing its containers, wait for room, so a burst of removals goes at the pace the disk
 * deletes at instead of leaving an ever longer backlog behind the last answer. A failed deletion
 * is tried again, 1 s after its first failure, doubling to 30 s.
 */
const REMOVAL_QUEUE = { width: 4, capacity: 16, firstRetryMs: 1000, maxRetryMs: 30_000 };
/**
 * Exited containers' runtime states deleted at once in the background, at most: each is a
 * runtime process (and its disk work), and start-up may find hundreds to delete.
 */
const MAX_RUNTIME_DELETIONS = 4;

/** The container runtimes by handler (runtime/runtime-registry.ts). */
export interface RuntimeLookup {
  get(handler: string): ContainerRuntime;
  find(handler: string): ContainerRuntime | undefined;
  features(handler: string): RuntimeFeatures;
}

/** What containers need of the images: an image's record, by reference or id. */
export interface ImageLookup {
  find(ref: string): Promise<Pick<ImageRecord, 'id' | 'chainId' | 'config'> | undefined>;
}

/** The writable layers containers run on (snapshot/snapshotter.ts). */
export interface WritableLayers {
  /** `publishAfter`: the layer appears under `key` only once this resolves; rejected, nothing is left. */
  prepare(key: string, chainId: string | undefined, opts?: { publishAfter?: Promise<unknown> }): Promise<unknown>;
  /**
   * The overlay dirs of a prepared layer: its upper dir is the container's changes, over its
   * image's layers (top first).
   */
  mounts(key: string): { upperdir: string; lowerdirs: string[] };
  /** The dirs of the committed layers of chain `chainId`, top first (what a writable layer on it mounts below its upper dir). */
  lowerDirs(chainId: string): string[];
  mount(key: string, target: string, opts?: { idmap?: IdmappedRootfs; mountLabel?: string }): Promise<void>;
  unmount(target: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface ContainerServiceOptions {
  root: string;
  state: string;
  runtimes: RuntimeLookup;
  images: ImageLookup;
  snapshots: WritableLayers;
  /** Backoff of record writes the disk refused (default 1 s doubling to 10 s). */
  persistRetry?: { firstMs: number; maxMs: number };
  /** The removed containers' deletion queue (default REMOVAL_QUEUE). */
  removalQueue?: { width: number; capacity: number; firstRetryMs: number; maxRetryMs: number };
  /** The node's CDI specs; without it a container asking for a CDI device is refused. */
  cdi?: CdiRegistry;
  /** Image volumes (CRI Mount.image); without it a mount with an image is refused. */
  imageVolumes?: ImageVolumes;
}

export function cgroupVersion(): 1 | 2 {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

/** An attached client's view of a container: its attach socket and terminal. */
export interface AttachTarget {
  record: ContainerRecord;
  io: Socket;
  resize(rows: number, cols: number): Promise<void>;
}

/** Whether the bundle's spec has poststop hooks; a spec that cannot be read may. */
async function mayRunPoststopHooks(bundle: string): Promise<boolean> {
  try {
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as OciSpec;
    return (spec.hooks?.poststop?.length ?? 0) > 0;
  } catch {
    return true;
  }
}

/** The layers a restored container's rootfs is mounted from, top first: its rootfs diff over the image. */
function restoreLayers(m: { upperdir: string; lowerdirs: string[] }): string[] {
  return [m.upperdir, ...m.lowerdirs];
}

/** The start's outcome in a record: started (at the time its intent gave), the intent gone. */
function recordStarted(startedAt: string): (r: ContainerRecord) => void {
  return (r) => {
    r.startedAt ??= startedAt;
    if (r.intent?.kind === 'start') delete r.intent;
  };
}

export class ContainerService implements PodContainers {
  readonly events = new ContainerEvents();
  private readonly records: ContainerRecords;
  private readonly names = new NameReservations('container');
  /** One lifecycle operation per id at a time. */
  private readonly locks = new KeyedLock();
  private readonly facts = readNodeFacts(cgroupVersion());
  /** The /etc/passwd and /etc/group of the images containers were created of, by chain id. */
  private readonly imageEtcFiles = new ImageEtcFilesCache();
  /** Ends the watch of each container whose exit is not recorded yet. */
  private readonly unwatch = new Map<string, () => void>();
  /** Callers waiting for a container's exit to be recorded. */
  private readonly exitWaiters = new Map<string, Set<() => void>>();
  /** Containers whose monitor died, while the truth about their process is being found out. */
  private readonly settling = new Map<string, Promise<void>>();
  /** Exits the monitor has been told are recorded. */
  private readonly acked = new Set<string>();
  /**
   * Each container's process as its bundle's config.json has it, read at its first exec: kubelet
   * probes a container every few seconds, and the bundle never changes after the create (a
   * resource update changes the cgroup, not the process). Dropped with the container's record.
   */
  private readonly execTemplates = new Map<string, OciSpec['process']>();
  /** Containers being started, and exits that arrived meanwhile (recorded once start is done). */
  private readonly starting = new Set<string>();
  private readonly deferredExits = new Map<string, { exit: ExitRecord; why?: { reason: string; message: string } }>();
  /**
   * Containers removed (RemoveContainer answered, the record marked) whose remains are held by
   * `deletions`, deleted in the background or waiting to be tried again after a failure.
   */
  private readonly removals = new Map<string, ContainerRecord>();
  /**
   * Removed containers (in `removals`) whose runtime state, cgroup included, is deleted: the rest
   * of their remains are their own, and a pod's removal does not wait for them.
   */
  private readonly runtimeStateGone = new Set<string>();
  /**
   * Pod removals waiting for a removed container's deletion to delete its runtime state, or to
   * fail before, in its next try.
   */
  private readonly removalWaiters = new Map<string, { resolve: () => void; reject: (err: unknown) => void }[]>();
  /** The removed containers' deletions (REMOVAL_QUEUE). */
  private readonly deletions: BoundedWorkQueue;
  /**
   * Exited containers' runtime states (and cgroups), deleted once the exit is on disk, the way
   * containerd's CRI plugin deletes a task when it handles its exit: RemoveContainer, and the
   * RemovePodSandbox waiting for it, then have no runtime process left to wait for. A failure is
   * logged; the removal's runtime delete does it again.
   */
  private readonly runtimeDeletions = new BackgroundTasks(MAX_RUNTIME_DELETIONS, (id, err) =>
    log.warn({ container: id, err: (err as Error).message }, 'deleting an exited container\'s runtime state failed; its removal tries again'));
  /**
   * Removed containers' dirs, deleted in the background (store/trash.ts). Synced after each
   * move: the state dir may be on a persistent disk, and the record goes before start-up could
   * tell a dir left at its old path from a live one.
   */
  private readonly trash: Trash;

  constructor(private readonly opts: ContainerServiceOptions) {
    this.records = new ContainerRecords(new RecordStore<ContainerRecord>(join(opts.root, 'containers'), CONTAINER_RECORD), {
      retry: opts.persistRetry,
      onSaved: (rec) => this.saved(rec),
    });
    this.trash = new Trash(join(opts.state, 'containers-trash'), { syncParent: true });
    const q = opts.removalQueue ?? REMOVAL_QUEUE;
    this.deletions = new BoundedWorkQueue({
      width: q.width,
      capacity: q.capacity,
      retryDelayMs: (failures) => Math.min(q.maxRetryMs, q.firstRetryMs * 2 ** (failures - 1)),
      onError: (id, err, retried) => log.error({ container: id, err }, retried
        ? 'deleting a removed container\'s remains failed; it is tried again shortly'
        : 'deleting a removed container\'s remains failed; the next start-up finishes it'),
    });
  }

  // ---- start-up and exit tracking ------------------------------------------------------------

  /**
   * Loads the records and finishes or undoes what a crash interrupted (see container-record.ts);
   * then watches every container that has not exited. Resolves once every container's state is
   * known: kubelet must not see a container RUNNING whose monitor died while we were down.
   */
  async recover(): Promise<void> {
    const pending: Promise<void>[] = [];
    const swept = await this.trash.sweep();
    if (swept) log.info({ dirs: swept }, 'deleted removed container dirs a stop or crash left in the trash');
    for (const rec of await this.records.load()) {
      if (!rec.created) {
        log.warn({ container: rec.id }, 'rolling back a container left half-created by a crash');
        await this.destroy(rec);
        continue;
      }
      if (rec.intent?.kind === 'remove') {
        log.warn({ container: rec.id }, 'finishing the removal of a container a crash interrupted');
        await this.destroy(rec);
        continue;
      }
      this.names.claim(rec.reservedName, rec.id);
      if (rec.imageVolumes) this.opts.imageVolumes?.hold(rec.id, rec.imageVolumes);
      const runtime = this.opts.runtimes.find(rec.runtimeHandler);
      if (!runtime) {
        log.error({ container: rec.id, handler: rec.runtimeHandler }, 'container of a runtime handler that is no longer configured: not watched');
        continue;
      }
      if (rec.finishedAt) {
        // Its monitor may still wait to be told the exit is recorded (its disk was full), and its
        // runtime state may still be there (a crash before or during its deletion).
        pending.push(runtime.exitRecorded(this.ref(rec)).catch(() => undefined).then(() => this.deleteRuntimeStateSoon(rec.id, runtime)));
        continue;
      }
      if (!rec.monitorPid) {
        pending.push(this.settleUnrecordedLaunch(rec, runtime).catch((err: unknown) => log.error({ container: rec.id, err }, 'recovering a created container')));
        continue;
      }
      pending.push((async () => {
        if (rec.intent?.kind === 'start') await this.completeStart(rec, runtime);
        await this.resumeAfterInterruptedCheckpoint(rec, runtime);
        await this.watch(rec.id);
      })().catch((err: unknown) => log.error({ container: rec.id, err }, 'recovering container')));
    }
    await Promise.all(pending);
    await Promise.all([...this.settling.values()]);
  }

  /**
   * A start a crash interrupted ends in what the runtime says happened: a process that left its
   * parking (running, or exited since) was started; one still parked was not, and stays CREATED
   * for kubelet to start (or remove) as it sees fit.
   */
  private async completeStart(rec: ContainerRecord, runtime: ContainerRuntime): Promise<void> {
    const where = await runtime.startState(this.ref(rec));
    log.info({ container: rec.id, runtimeState: where }, where === 'started'
      ? 'a start a crash interrupted had happened: the container is running'
      : 'a start a crash interrupted had not happened: the container stays created');
    this.records.updateSoon(rec.id, (r) => {
      if (where === 'started') r.startedAt ??= rec.intent!.at;
      delete r.intent;
    });
  }

  /**
   * A checkpoint a crash interrupted may have left its container paused (checkpoint/
   * container-checkpoint.ts): resumed before it is watched. A failure is logged, and the
   * container watched all the same: its processes are there, frozen.
   */
  private async resumeAfterInterruptedCheckpoint(rec: ContainerRecord, runtime: ContainerRuntime): Promise<void> {
    try {
      if (await finishInterruptedCheckpoint(runtime, this.ref(rec))) {
        log.warn({ container: rec.id }, 'resumed a container whose checkpoint a crash interrupted');
      }
    } catch (err) {
      log.error({ container: rec.id, err }, 'resuming a container whose checkpoint a crash interrupted failed: it may stay paused');
    }
  }

  /**
   * A container without a monitor in its record has nothing in the runtime while CREATED: its
   * runtime create (or restore, from a checkpoint) is StartContainer's. A start a crash
   * interrupted before its pids were recorded may have left a monitor and the runtime's state:
   * that is undone (killed, deleted, the monitor gone) and the container stays CREATED for
   * kubelet, as after a start that failed. The process was at most parked then (the create's
   * release waits for its pids on disk); a restored one may have run a moment, and a process
   * nobody watches or logs for cannot be kept either way.
   */
  private async settleUnrecordedLaunch(rec: ContainerRecord, runtime: ContainerRuntime): Promise<void> {
    const where = await runtime.startState(this.ref(rec));
    if (where !== 'gone') {
      log.warn({ container: rec.id, runtimeState: where }, 'a start a crash interrupted before its pids were recorded is undone: the container stays created');
      await runtime.delete(this.ref(rec), { waitForMonitor: true });
    }
    if (!rec.intent) return;
    this.records.updateSoon(rec.id, (r) => {
      delete r.intent;
    });
  }

  /** Monitors we are connected to: one per container whose exit is not recorded yet. */
  get monitorsWatched(): number {
    return this.unwatch.size;
  }

  /** Stops watching (the monitors go on without us) and writes what is still only in memory. */
  async close(): Promise<void> {
    for (const stop of this.unwatch.values()) stop();
    this.unwatch.clear();
    // Those not begun are done by the next start-up (recover).
    await this.runtimeDeletions.drain();
    // What a removal leaves undone is finished at start-up; waiting here keeps a clean stop clean
    // (each held deletion is tried once more, one waiting to be retried too).
    await this.deletions.close();
    await this.recordWritesOf([...this.removals.keys()]);
    await this.trash.settled();
    await this.records.close();
  }

  /** The runtime's view of a container. */
  private ref(rec: ContainerRecord): RuntimeRef {
    return {
      id: rec.id, dir: rec.dir, logPath: rec.logPath || undefined, pid: rec.pid, pidStartTime: rec.pidStartTime,
      monitorPid: rec.monitorPid, monitorStartTime: rec.monitorStartTime,
    };
  }

  private runtimeOf(rec: ContainerRecord): ContainerRuntime {
    return this.opts.runtimes.get(rec.runtimeHandler);
  }

  private async watch(id: string): Promise<void> {
    const rec = this.records.get(id);
    // No monitor yet (CREATED): there is nothing to watch until StartContainer launches one.
    if (!rec || rec.finishedAt || !rec.monitorPid || this.unwatch.has(id)) return;
    const stop = await this.runtimeOf(rec).watch(this.ref(rec), (e) => this.onRuntimeEvent(id, e));
    if (this.records.get(id)?.finishedAt || !this.records.get(id)) stop();
    else this.unwatch.set(id, stop);
  }

  private onRuntimeEvent(id: string, e: RuntimeEvent): void {
    this.unwatch.delete(id);
    if (e.kind === 'exited') {
      this.recordExit(id, e.exit);
      return;
    }
    const settled = this.settleDeadMonitor(id, e.detail)
      .catch((err: unknown) => log.error({ container: id, err }, 'settling a container whose monitor died'))
      .finally(() => this.settling.delete(id));
    this.settling.set(id, settled);
  }

  /**
   * Its monitor died: nobody will report the exit. A process still running is killed (nothing
   * would log its output or see it end); either way the record says what happened.
   */
  private async settleDeadMonitor(id: string, detail: string): Promise<void> {
    const rec = this.records.get(id);
    if (!rec || rec.finishedAt) return;
    log.warn({ container: id, monitorPid: rec.monitorPid, pid: rec.pid }, `container monitor died: ${detail}`);
    const began = performance.now();
    const killed = await this.runtimeOf(rec).killOrphan(this.ref(rec));
    const exit: ExitRecord = { exitCode: killed ? 137 : 255, signal: killed ? 9 : null, exitedAt: isoTime(), oomKilled: false };
    this.recordExit(id, exit, killed
      ? { reason: 'Error', message: `${detail}; the container's process (pid ${rec.pid}) was still running and was killed` }
      : { reason: 'Unknown', message: `${detail}; the container's process is gone too` });
    // Until here the container is reported running: how long that took is what an operator (and
    // the soak run's truth checks) may need to know.
    log.info({ container: id, killed, ms: Math.round(performance.now() - began) }, 'container of a dead monitor recorded exited');
  }

  /** Records an exit: in memory at once (and the event), on disk as soon as the disk takes it. */
  private recordExit(id: string, exit: ExitRecord, why?: { reason: string; message: string }): void {
    const cur = this.records.get(id);
    if (!cur || cur.finishedAt) return;
    if (this.starting.has(id)) {
      this.deferredExits.set(id, { exit, why });
      return;
    }
    const rec = this.records.updateSoon(id, (r) => {
      // A container that exits before (or while) it is started counts as started then, or at
      // its creation when it never was.
      r.startedAt ??= r.intent?.kind === 'start' ? r.intent.at : r.createdAt;
      // The monitor's clock and ours agree only to the microsecond it printed.
      const finished = isoToNs(exit.exitedAt);
      r.finishedAt = BigInt(finished) < BigInt(r.startedAt) ? r.startedAt : finished;
      r.exitCode = exit.exitCode;
      r.reason = why?.reason ?? (exit.oomKilled ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error');
      if (why) r.message = why.message;
      delete r.intent;
    });
    this.emit(rec, 'CONTAINER_STOPPED_EVENT');
    for (const wake of this.exitWaiters.get(id) ?? []) wake();
    this.exitWaiters.delete(id);
  }

  /**
   * A record reached the disk: an exit on disk is one the monitor need not keep any longer. A
   * container that never had a monitor (stopped while CREATED, before the runtime's create) has
   * nobody to tell and nothing in the runtime to delete.
   */
  private saved(rec: ContainerRecord): void {
    if (!rec.finishedAt || !rec.monitorPid || this.acked.has(rec.id)) return;
    const runtime = this.opts.runtimes.find(rec.runtimeHandler);
    if (!runtime) return;
    this.acked.add(rec.id);
    runtime.exitRecorded(this.ref(rec))
      .catch((err: unknown) => log.debug({ container: rec.id, err }, 'telling the monitor the exit is recorded'))
      .then(() => this.deleteRuntimeStateSoon(rec.id, runtime));
  }

  /**
   * The exit is on disk and the monitor told: the runtime's state of the container goes now, in
   * the background (runtimeDeletions). Never before the exit is durable: a crash must not leave
   * a container recorded running whose runtime state is gone. A crash before or during the
   * deletion leaves the state to start-up (recover), which deletes it again.
   */
  private deleteRuntimeStateSoon(id: string, runtime: ContainerRuntime): void {
    this.runtimeDeletions.add(id, async () => {
      // Also once RemoveContainer marked it, while its remains wait to be deleted in the
      // background: that deletion waits for this one (the runtime runs one delete of a
      // container at a time). Removed and gone, or removed before answering: nothing to do.
      const rec = this.records.get(id) ?? this.removals.get(id);
      if (!rec?.finishedAt) return;
      crashPoint('ContainerExit:before-runtime-delete');
      await runtime.deleteExited(this.ref(rec));
    });
  }

  /** Resolves true once the exit is recorded (or the container is gone), false after timeoutMs. */
  private waitExited(id: string, timeoutMs: number): Promise<boolean> {
    const rec = this.records.get(id);
    if (!rec || rec.finishedAt) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiters = this.exitWaiters.get(id) ?? new Set<() => void>();
      this.exitWaiters.set(id, waiters);
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      waiters.add(wake);
    });
  }

  private emit(rec: ContainerRecord, type: ContainerEventType): void {
    this.events.emit({ containerId: rec.id, podId: rec.podId, type, createdAt: nowNs() });
  }

  // ---- lookups (memory only: reads never write) ----------------------------------------------

  get(idOrPrefix: string): ContainerRecord {
    if (!idOrPrefix) throw new InvalidArgumentError('container id must not be empty');
    const hits = this.records.matching(idOrPrefix).filter((c) => c.created);
    if (hits.length === 0) throw new NotFoundError(`container ${idOrPrefix} not found`);
    if (hits.length > 1) throw new InvalidArgumentError(`container id prefix ${idOrPrefix} is ambiguous`);
    return hits[0]!;
  }

  /** The created container with exactly this id, if any. */
  find(id: string): ContainerRecord | undefined {
    const rec = this.records.get(id);
    return rec?.created ? rec : undefined;
  }

  async status(idOrPrefix: string): Promise<ContainerRecord> {
    return this.get(idOrPrefix);
  }

  list(): ContainerRecord[] {
    return this.records.list().filter((c) => c.created);
  }

  /** Every record, those still being created too (they count against the listed-size budget). */
  allRecords(): ContainerRecord[] {
    return this.records.list();
  }

  /** The pod's containers, those still being deleted after their removal too. */
  idsInPod(podId: string): string[] {
    const ids = this.records.list().filter((c) => c.podId === podId).map((c) => c.id);
    for (const [id, r] of this.removals) if (r.podId === podId) ids.push(id);
    return ids;
  }

  /** Containers whose remains are still being deleted after RemoveContainer answered. */
  get removalsInProgress(): number {
    return this.removals.size;
  }

  /**
   * Resolves once no background deletion runs or waits its turn (done, or failed and waiting to
   * be tried again).
   */
  async removalsSettled(): Promise<void> {
    const ids = [...this.removals.keys()];
    await this.deletions.settled();
    await this.recordWritesOf(ids);
  }

  /** A record write still in flight when the removal was marked (it does not wait for one). */
  private async recordWritesOf(ids: string[]): Promise<void> {
    await Promise.all(ids.map((id) => this.records.idle(id)));
  }

  async spec(id: string): Promise<OciSpec | undefined> {
    try {
      return JSON.parse(await readFile(join(containerPaths(this.get(id).dir).bundle, 'config.json'), 'utf8')) as OciSpec;
    } catch {
      return undefined;
    }
  }

  // ---- create ---------------------------------------------------------------------------------

  /** Creates a container in `pod` (which the caller found ready). */
  async create(pod: SandboxRecord, config: ContainerConfig__Output | null | undefined, signal: AbortSignal): Promise<string> {
    if (!config?.metadata?.name) throw new InvalidArgumentError('CreateContainer: config.metadata.name must not be empty');
    if (!config.image?.image) throw new InvalidArgumentError('CreateContainer: config.image.image must name an image');
    const id = randomBytes(32).toString('hex');
    const { id: got } = await this.names.run(reservedContainerName(pod.id, config), id, signal, () =>
      this.doCreate(id, pod, config),
    );
    return got;
  }

  private logPath(pod: SandboxRecord, config: ContainerConfig__Output): string {
    const dir = pod.config.logDirectory;
    if (!config.logPath) return '';
    const clean = normalize(config.logPath);
    if (isAbsolute(clean) || clean.startsWith('..')) {
      throw new InvalidArgumentError(`CreateContainer: config.logPath "${config.logPath}" must be relative to the pod's log directory`);
    }
    if (!dir) throw new InvalidArgumentError('CreateContainer: config.logPath is set but the pod has no log_directory');
    return join(dir, clean);
  }

  private async doCreate(id: string, pod: SandboxRecord, config: ContainerConfig__Output): Promise<void> {
    const clog = log.child({ container: id, pod: pod.id });
    // An archive as the image (as CRI-O and containerd accept it): the container is its base image
    // plus its file changes, and StartContainer restores its processes.
    const archive = await isCheckpointArchivePath(config.image!.image) ? config.image!.image : undefined;
    // A restore gets the PID namespace CRIU recreates from the checkpoint (crib-runtime's restore
    // joins only the pod's network namespace): a TARGET asked for would be silently dropped.
    if (archive && config.linux?.securityContext?.namespaceOptions?.pid === 'TARGET') {
      throw new InvalidArgumentError(
        `CreateContainer: namespaceOptions.pid TARGET cannot be used with a checkpoint archive as the image (${archive}): ` +
        'a restored container keeps the PID namespace layout it was checkpointed with',
      );
    }
    const dump = archive ? await readConfigDump(archive) : undefined;
    const imageRef = dump ? dump.rootfsImageName || dump.rootfsImageRef : config.image!.image;
    const image = await this.opts.images.find(imageRef) ?? (dump?.rootfsImageRef ? await this.opts.images.find(dump.rootfsImageRef) : undefined);
    if (!image) {
      throw new NotFoundError(dump
        ? `CreateContainer: the checkpoint archive ${archive} was made from image "${imageRef}", which is not present; pull it first`
        : `CreateContainer: image "${config.image!.image}" is not present; pull it first`);
    }
    const imageConfig = image.config as ImageConfig;
    const runtime = this.opts.runtimes.get(pod.runtimeHandler);
    const dir = join(this.opts.state, 'containers', id);
    const paths = containerPaths(dir);
    const logPath = this.logPath(pod, config);
    // Resolved before anything is made: an unknown device leaves nothing behind.
    const cdiDevices = await this.resolveCdi(config);
    const target = this.targetInit(pod.id, config, 'CreateContainer');
    // Image volumes are checked and their images found before anything is made.
    const volumes = await this.opts.imageVolumes?.plan(id, dir, config.mounts ?? []) ?? [];
    // Checked before anything is made too; the rootfs is mounted with the mount label.
    const selinux = containerSelinuxLabels(config, pod, this.facts.lsm);
    const rec: ContainerRecord = {
      id, podId: pod.id, reservedName: reservedContainerName(pod.id, config), config,
      imageId: image.id, imageName: dump ? imageRef : config.image!.userSpecifiedImage || config.image!.image,
      runtimeHandler: pod.runtimeHandler, created: false, createdAt: nowNs(), dir, logPath,
      // The CRI's stop_signal wins over the image's STOPSIGNAL.
      stopSignal: chosenStopSignal(config.stopSignal, imageConfig.config?.StopSignal),
      ...(volumes.length > 0 ? { imageVolumes: volumes.map(({ chainId: _, ...v }) => v) } : {}),
    };
    const snapshots = this.opts.snapshots;
    // Found before anything is made: an image whose layers went meanwhile leaves nothing behind.
    const imageLayers = image.chainId !== undefined ? snapshots.lowerDirs(image.chainId) : [];
    const specFor = (rootfsLayers: readonly string[], etcFiles?: EtcFiles): Promise<OciSpec> => buildContainerSpec({
      id,
      config,
      sandbox: {
        id: pod.id,
        config: pod.config,
        selinuxLevel: pod.selinuxLevel,
        netnsPath: pod.netnsPath,
        ipcnsPath: pod.ipcnsPath,
        utsnsPath: pod.utsnsPath,
        pidnsPath: pod.podInitPid ? podInitPidNamespace(pod.podInitPid) : undefined,
        userns: pod.userns,
        hostname: pod.hostname,
        hostsPath: pod.files?.hostsPath,
        resolvPath: pod.files?.resolvPath,
        hostnamePath: pod.files?.hostnamePath,
        shmPath: pod.files?.shmPath,
        cgroupParent: pod.config.linux?.cgroupParent ?? '',
      },
      image: { config: imageConfig, ref: rec.imageName },
      rootfsPath: paths.rootfs,
      rootfsLayers,
      etcFiles,
      cgroupVersion: cgroupVersion(),
      runtimeFeatures: runtime.features,
      cdiDevices,
      // The runtime joins the namespace at StartContainer, through a descriptor held then
      // (startInRuntime): this path is replaced before the runtime reads the spec.
      targetPidnsPath: target ? TARGET_PIDNS_PLACEHOLDER : undefined,
      imageVolumeSources: ImageVolumes.sources(volumes),
      selinuxLabels: selinux,
    }, this.facts);
    // The intent goes to disk first, durably (its directory synced): a crash from here on is
    // rolled back at start-up, and the writable layer outlives a power cut, so its owner's
    // record must too (the snapshotter syncs no directory of its own for it). The layer's dirs
    // and record are made meanwhile, in a temp dir start-up sweeps; the layer appears under its
    // key only once the intent is durable. The spec is built meanwhile too: it reads the
    // image's /etc/passwd from the image's layers (the writable layer is still empty), and
    // what else it touches on the node (missing host dirs of bind mounts, made as kubelet's
    // hostPath volumes expect) no rollback removes anyway. A container from a checkpoint has
    // its spec built once its rootfs diff is in the writable layer, which may change the users.
    // The bundle's dir is made once the intent is in place, while the intent's directory is
    // synced: a crash from then on finds the intent, whose rollback removes the dir; a power cut
    // takes the dir with the intent (the state dir is a tmpfs, /run; on one journalling file
    // system the mkdir, made after the rename, cannot outlive it either).
    const makeBundleDir = () => mkdir(paths.bundle, { recursive: true, mode: 0o700 }); // private: see daemon/private-dirs.ts
    let bundleDir: Promise<unknown> | undefined;
    const intent = this.records.add(rec, {
      onRenamed: () => {
        bundleDir = makeBundleDir();
        bundleDir.catch(() => undefined);
      },
    });
    const layer = snapshots.prepare(id, image.chainId, { publishAfter: intent });
    // The image's /etc/passwd and /etc/group are read once per image (its layers never change).
    const early = archive ? undefined
      : specFor(imageLayers, image.chainId !== undefined ? this.imageEtcFiles.get(image.chainId, imageLayers) : undefined);
    // Awaited below (or by the rollback); a failure that comes first is not an unhandled one.
    layer.catch(() => undefined);
    early?.catch(() => undefined);
    try {
      await intent;
    } catch (err) {
      // The layer gives up too (it waited for the intent) and removes what it made: nothing is
      // left. The spec's work ends before the call does. An intent renamed into place whose
      // directory would not sync leaves its record to start-up's rollback, and its dir here.
      await Promise.allSettled([layer, early, bundleDir]);
      if (bundleDir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    crashPoint('CreateContainer:after-record');
    const cleaner = new Cleaner(clog);
    cleaner.add('remove record', () => this.records.remove(id));
    // Registered now, since a step before the layer is awaited may fail; the key's dir goes
    // whether or not the layer was made.
    cleaner.add('remove writable layer', async () => {
      await layer.catch(() => undefined);
      await snapshots.remove(id);
    });
    // Steps that run side by side from here; a failure waits for all of them before the rollback.
    let ready: Promise<void> | undefined;
    let made: Promise<void> | undefined;
    try {
      cleaner.add('remove container dir', () => rm(dir, { recursive: true, force: true }));
      const dirMade = bundleDir ?? makeBundleDir();
      // What the rootfs mount needs: the writable layer, and the image volumes mounted.
      ready = (async () => {
        await dirMade;
        const imageVolumes = this.opts.imageVolumes;
        if (imageVolumes && volumes.length > 0) {
          imageVolumes.hold(id, volumes);
          cleaner.add('release image volumes', () => imageVolumes.release(id, volumes));
          // In a user-namespaced pod the volume is seen through the pod's mapping, as the rootfs is.
          await imageVolumes.mount(volumes, pod.userns ? { usernsPath: pod.userns.path } : undefined);
        }
        await layer;
        crashPoint('CreateContainer:after-writable-layer');
      })();
      // Awaited below (or by the rollback): a failure that comes first is not an unhandled one.
      ready.catch(() => undefined);
      // A checkpoint's rootfs diff goes into the writable layer before its spec is built.
      let restoreFrom: string | undefined;
      if (archive) {
        await ready;
        restoreFrom = await this.unpackCheckpoint(archive, dir, snapshots.mounts(id));
      }
      // Usually built already: the created record below is then written and synced while the
      // writable layer is still being made, not only once the rootfs is mounted.
      const spec = early ? await early : await specFor(restoreLayers(snapshots.mounts(id)));
      // The rootfs mount and the bundle, side by side; the record's last write is synced under
      // its temp name meanwhile and renamed into place only once both are done (commitAfter).
      made = allOrFirstError([
        (async () => {
          await ready;
          // A user-namespaced pod's rootfs is seen through its id mapping (snapshotter.ts).
          await snapshots.mount(id, paths.rootfs, {
            idmap: pod.userns ? idmappedRootfs(pod.userns) : undefined,
            mountLabel: selinux?.mountLabel,
          });
          cleaner.add('unmount rootfs', () => snapshots.unmount(paths.rootfs));
          crashPoint('CreateContainer:after-mount');
        })(),
        (async () => {
          // The bundle's dir is all it needs: written while the layer is made.
          await dirMade;
          await writeFile(join(paths.bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
          if (logPath) await mkdir(dirname(logPath), { recursive: true });
          crashPoint('CreateContainer:after-bundle');
        })(),
      ]);
      const u = spec.process.user;
      // The runtime's create (the monitor, namespaces, mounts, the parked process) is
      // StartContainer's, as in containerd: a created container is its record, writable layer,
      // rootfs mount and bundle, and nothing runs for it yet.
      // No directory sync: the intent's name is durable in the same directory, and a power cut
      // that loses this rename (before the directory's next sync) takes the rootfs mount with
      // it too, so start-up rolls the container back from the intent, as it would a crash just
      // before this line (kubelet sees the container gone and creates it again). The content is
      // still synced before the rename: the file is the intent or this record, never a torn one
      // (a crash before the rename leaves the temp file to start-up's sweep, and the intent).
      await this.records.commitAfter(id, (r) => {
        r.cgroupsPath = spec.linux.cgroupsPath;
        r.user = { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids ?? [] };
        if (restoreFrom) r.restoreFrom = restoreFrom;
        r.created = true;
      }, made, { syncDir: false, beforeRename: () => crashPoint('CreateContainer:after-record-synced') });
      this.emit(this.records.get(id)!, 'CONTAINER_CREATED_EVENT');
      clog.info({ name: config.metadata!.name, image: rec.imageName, ...(archive ? { checkpoint: archive } : {}) },
        archive ? 'container created from a checkpoint' : 'container created');
    } catch (err) {
      clog.info({ err: (err as Error).message }, 'container creation failed; rolling back');
      // Nothing is left running behind the failure to make what the rollback would miss.
      await Promise.allSettled([ready, made]);
      await cleaner.run();
      throw err;
    }
  }

  /**
   * Unpacks a checkpoint archive into the container dir and applies its rootfs diff, then its
   * deleted.files, to the new (still unmounted, empty) upper dir; resolves with the CRIU images' dir.
   */
  private async unpackCheckpoint(archive: string, dir: string, layers: OverlayLayers): Promise<string> {
    const unpacked = await unpackCheckpointArchive(archive, join(dir, 'checkpoint'));
    if (unpacked.rootfsDiffTar) await applyRootfsDiff(unpacked.rootfsDiffTar, layers.upperdir, ARCHIVE_LIMITS);
    await applyDeletedFiles(join(unpacked.dir, DELETED_FILES), layers, ARCHIVE_LIMITS.maxEntries);
    return unpacked.imagesDir;
  }

  private async resolveCdi(config: ContainerConfig__Output) {
    if (this.opts.cdi) return this.opts.cdi.resolveFor(config);
    const asked = requestedCdiDevices(config);
    if (asked.length > 0) throw new InvalidArgumentError(`CreateContainer: CDI device "${asked[0]}" was asked for but CDI is not configured`);
    return [];
  }

  /**
   * TARGET pid mode (kubectl debug --target): the init of another running container of the same
   * pod, whose PID namespace the new container joins (held open by target-pidns.ts). Checked at
   * CreateContainer (a debug container for a target that is not running is refused before
   * anything is made) and again at StartContainer, where the runtime joins the namespace.
   */
  private targetInit(podId: string, config: ContainerConfig__Output, call: string): TargetInit | undefined {
    const ns = config.linux?.securityContext?.namespaceOptions;
    if (ns?.pid !== 'TARGET') return undefined;
    const targetId = ns.targetId ?? '';
    if (!targetId) throw new InvalidArgumentError(`${call}: namespaceOptions.pid is TARGET but targetId is empty`);
    const target = this.find(targetId);
    if (!target || target.podId !== podId) {
      throw new NotFoundError(`${call}: namespaceOptions.targetId: container ${targetId} not found in pod ${podId}`);
    }
    if (criState(target) !== 'CONTAINER_RUNNING' || !target.pid) {
      throw new NotFoundError(`${call}: namespaceOptions.targetId: container ${target.id} is not running, so it has no PID namespace to join`);
    }
    return { id: target.id, pid: target.pid, pidStartTime: target.pidStartTime };
  }

  // ---- start / stop / remove ------------------------------------------------------------------

  async start(idOrPrefix: string): Promise<void> {
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      const cur = this.records.get(rec.id);
      if (!cur) throw new NotFoundError(`container ${rec.id} not found`);
      const state = criState(cur);
      if (state !== 'CONTAINER_CREATED') {
        throw new FailedPreconditionError(`container ${cur.id} is ${state.slice(10).toLowerCase()}, not created: it cannot be started`);
      }
      // Taken before start: a process that exits at once must not finish before it started.
      const startedAt = nowNs();
      // A container with nothing in the runtime yet writes its intent with the pids the
      // runtime's create gives (createInRuntime): one record write on the start's path, and
      // start-up finds what a start left before it by the id. Others write it first.
      if (cur.monitorPid || cur.restoreFrom) {
        // No directory sync: the start's outcome is written after it, and a power cut takes the
        // started process with it (the intent's only use is telling a crash's restart to check).
        await this.records.commit(cur.id, (r) => {
          r.intent = { kind: 'start', at: startedAt };
        }, { syncDir: false });
        crashPoint('StartContainer:after-intent');
      }
      // An exit reported while start runs waits for it: kubelet must see STARTED before STOPPED.
      this.starting.add(cur.id);
      try {
        // A start this daemon's create path made has its outcome on disk already (createInRuntime).
        let started = await this.startInRuntime(cur, startedAt);
        if (!started) {
          crashPoint('StartContainer:after-runtime-start');
          started = this.records.updateSoon(cur.id, recordStarted(startedAt));
        }
        this.emit(started, 'CONTAINER_STARTED_EVENT');
        log.info({ container: cur.id }, 'container started');
      } finally {
        this.starting.delete(cur.id);
        const deferred = this.deferredExits.get(cur.id);
        this.deferredExits.delete(cur.id);
        if (deferred) this.recordExit(cur.id, deferred.exit, deferred.why);
      }
    });
  }

  /**
   * The runtime's part of a start. A container created by this daemon has nothing in the runtime
   * yet: the monitor creates it, then the parked process is released. One a daemon before this
   * one created (its monitor and parked process launched at CreateContainer) is only released;
   * a start that fails on a process no longer parked was done by a runtime start the crash of an
   * earlier daemon left running: that is a start, not an error. Returns the started record when
   * it wrote the start's outcome itself (the create path), undefined when the caller writes it.
   */
  private async startInRuntime(rec: ContainerRecord, startedAt: string): Promise<ContainerRecord | undefined> {
    const runtime = this.runtimeOf(rec);
    if (!rec.monitorPid) {
      if (rec.restoreFrom) await this.restoreInRuntime(rec, runtime);
      else return this.createInRuntime(rec, runtime, startedAt);
      return undefined;
    }
    try {
      await runtime.start(this.ref(rec));
    } catch (err) {
      if ((await runtime.startState(this.ref(rec)).catch(() => 'unknown')) !== 'started') throw err;
      log.warn({ container: rec.id, err: (err as Error).message }, 'runtime start failed on a container already started: recording it started');
    }
    return undefined;
  }

  /**
   * The runtime's create (crib-monitor runs it: namespaces, mounts, the parked process) and
   * start. The start's intent and the pids are on disk before the process is released, so that
   * a crash after that finds a container it can watch and a start to complete (completeStart);
   * a crash before finds a record without pids and runtime state to undo
   * (settleUnrecordedLaunch). A failure anywhere undoes the runtime's part: the container is
   * CREATED again, with nothing running.
   *
   * The outcome (started, the intent gone) is written and synced under its temp name while the
   * runtime releases the process, and renamed over the intent once it has exec'd: the call
   * answers with it on disk, for the cost of a rename and a directory sync. Written after the
   * answer instead (as it was), its eight file operations ran into the calls kubelet makes next:
   * the ContainerStatus right after StartContainer cost the daemon ~1 ms more CPU than the ones
   * after it (bench/status-after-work.ts), most of it that write (bench:ops' CPU profile).
   */
  private async createInRuntime(rec: ContainerRecord, runtime: ContainerRuntime, startedAt: string): Promise<ContainerRecord> {
    const clog = log.child({ container: rec.id, pod: rec.podId });
    const paths = containerPaths(rec.dir);
    const target = this.targetInit(rec.podId, rec.config, 'StartContainer');
    let targetNs: HeldPidNamespace | undefined;
    let launched: ContainerRecord | undefined;
    try {
      if (target) {
        targetNs = await holdTargetPidNamespace(target, 'StartContainer');
        await stallAfterTargetCheck(clog, target);
        await pointSpecAtPidNamespace(join(paths.bundle, 'config.json'), targetNs.path);
      }
      const created = await runtime.create(this.ref(rec), this.launchOptions(rec));
      // Known in memory at once: a failure from here on deletes by them.
      launched = { ...rec, ...created };
      crashPoint('StartContainer:after-runtime-create');
      // Its namespace was held, so the container is in it or nowhere; a target gone by now took
      // (or is taking) the namespace down with it.
      if (targetNs && !targetNs.targetRunning()) throw targetNs.exitedError();
      // No directory sync: the start's outcome is written after it, and a power cut takes the
      // monitor and the process with it (start-up finds the record without pids then, and
      // deletes whatever runtime state of the id outlived the cut).
      launched = await this.records.commit(rec.id, (r) => {
        r.intent = { kind: 'start', at: startedAt };
        r.pid = created.pid;
        r.pidStartTime = created.pidStartTime;
        r.monitorPid = created.monitorPid;
        r.monitorStartTime = created.monitorStartTime;
      }, { syncDir: false });
      crashPoint('StartContainer:after-intent');
      // Not awaited: the watch asks the monitor for the state once connected, so an exit before
      // then is still reported (after the start: start() defers it).
      this.watch(rec.id).catch((err: unknown) => clog.error({ err }, 'watching the container monitor'));
      const release = runtime.start(this.ref(launched));
      try {
        return await this.records.commitAfter(rec.id, recordStarted(startedAt), release, {
          beforeRename: () => crashPoint('StartContainer:after-runtime-start'),
        });
      } catch (err) {
        // A release that failed throws here, and is undone below.
        await release;
        // The process runs; only the disk refused its outcome: kept in memory and written when
        // the disk takes it (the intent on disk makes a restart meanwhile ask the runtime).
        clog.warn({ err: (err as Error).message }, 'the start\'s outcome was not written; keeping it in memory and retrying');
        return this.records.updateSoon(rec.id, recordStarted(startedAt));
      }
    } catch (err) {
      clog.info({ err: (err as Error).message }, 'runtime create or start failed; undoing it: the container stays created');
      await this.undoLaunch(rec.id, launched ?? rec, runtime);
      // Joining a namespace whose init is gone fails in the runtime (no pid can be allocated in
      // it): the reason to give is the target's exit.
      throw targetNs && !targetNs.targetRunning() ? targetNs.exitedError() : err;
    } finally {
      await targetNs?.close();
    }
  }

  /**
   * Kills and deletes what a failed start launched (the monitor goes once its process is gone)
   * and forgets its pids: the container is CREATED again, without a process, as if the start had
   * not been called. An exit the watch reported meanwhile is of that undone process: dropped.
   */
  private async undoLaunch(id: string, launched: ContainerRecord, runtime: ContainerRuntime): Promise<void> {
    this.stopWatching(id);
    try {
      await runtime.delete(this.ref(launched), { waitForMonitor: true });
    } catch (e) {
      log.warn({ container: id, err: (e as Error).message }, 'deleting what a failed start left in the runtime');
    }
    this.deferredExits.delete(id);
    // On disk as soon as it can be; a crash before finds the start's intent with pids of a
    // runtime state that is gone, and the watch it begins then records the container exited.
    this.records.updateSoon(id, (r) => {
      delete r.pid;
      delete r.pidStartTime;
      delete r.monitorPid;
      delete r.monitorStartTime;
      delete r.intent;
    });
  }

  /** What the monitor is launched with, for a create or a restore alike. */
  private launchOptions(rec: ContainerRecord): CreateOptions {
    return {
      bundle: containerPaths(rec.dir).bundle,
      logPath: rec.logPath || join(rec.dir, 'console.log'),
      stdin: rec.config.stdin,
      stdinOnce: rec.config.stdinOnce,
      tty: rec.config.tty,
    };
  }

  /** The checkpointed processes, restored under a new monitor: the container's start. */
  private async restoreInRuntime(rec: ContainerRecord, runtime: ContainerRuntime): Promise<void> {
    try {
      const created = await runtime.restore(this.ref(rec), { ...this.launchOptions(rec), imagePath: rec.restoreFrom! });
      await this.records.commit(rec.id, (r) => {
        r.pid = created.pid;
        r.pidStartTime = created.pidStartTime;
        r.monitorPid = created.monitorPid;
        r.monitorStartTime = created.monitorStartTime;
      });
    } catch (err) {
      // Nothing of a failed restore may stay: the container is CREATED again, without a process.
      await runtime.delete(this.ref(rec)).catch((e: unknown) => log.warn({ container: rec.id, err: (e as Error).message }, 'cleaning up a failed restore'));
      throw err;
    }
    await this.watch(rec.id);
  }

  // ---- checkpoint ---------------------------------------------------------------------------

  /**
   * Writes a checkpoint archive of a running container to `location` (checkpoint/); the
   * container keeps running. timeoutS 0: the default (container-checkpoint.ts).
   */
  async checkpoint(idOrPrefix: string, location: string, timeoutS: number, signal?: AbortSignal): Promise<void> {
    const path = await checkedLocation(location);
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      const cur = this.records.get(rec.id);
      if (!cur || criState(cur) !== 'CONTAINER_RUNNING') {
        throw new FailedPreconditionError(`CheckpointContainer: container ${rec.id} is ${cur ? criState(cur).slice(10).toLowerCase() : 'gone'}, not running`);
      }
      const paths = containerPaths(cur.dir);
      const config: ConfigDump = {
        id: cur.id,
        name: cur.config.metadata?.name ?? '',
        rootfsImage: cur.imageId,
        rootfsImageRef: cur.imageId,
        rootfsImageName: cur.imageName,
        runtime: cur.runtimeHandler,
        createdTime: isoTime(Number(BigInt(cur.createdAt) / 1_000_000n)),
        checkpointedTime: '',
      };
      await checkpointContainer(this.runtimeOf(cur), {
        ref: this.ref(cur), config, specPath: join(paths.bundle, 'config.json'), upperdir: this.opts.snapshots.mounts(cur.id).upperdir,
      }, path, timeoutS, signal);
      log.info({ container: cur.id, location: path }, 'container checkpointed');
    });
  }

  /** Stop: the image's STOPSIGNAL (or SIGTERM), then SIGKILL after `timeout` seconds; idempotent. */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    // Idempotent like remove: a container that is gone (or never was) is as stopped as it gets
    // (critest's Idempotence specs; containerd and CRI-O answer the same).
    if (this.records.matching(idOrPrefix).length === 0) return;
    const rec = this.get(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      const cur = this.records.get(rec.id);
      if (!cur) return;
      const state = criState(cur);
      if (state === 'CONTAINER_EXITED') return;
      const runtime = this.runtimeOf(cur);
      const ref = this.ref(cur);
      if (state === 'CONTAINER_CREATED' && !cur.monitorPid) {
        // Nothing runs (the runtime's create is StartContainer's): stopped as a parked process
        // is, without asking the runtime anything.
        this.recordExit(cur.id, { exitCode: 137, signal: 9, exitedAt: isoTime(), oomKilled: false });
        return;
      }
      if (state === 'CONTAINER_CREATED') {
        // Never started (created by an earlier daemon, parked): kill the parked process; the
        // monitor reports the exit.
        await runtime.kill(ref, 'KILL', { all: true });
        crashPoint('StopContainer:after-kill');
        if (!(await this.waitExited(cur.id, KILL_GRACE_MS))) {
          this.recordExit(cur.id, { exitCode: 137, signal: 9, exitedAt: isoTime(), oomKilled: false });
        }
        return;
      }
      if (timeoutSeconds > 0) {
        await runtime.kill(ref, killSignal(cur.stopSignal));
        crashPoint('StopContainer:after-signal');
        if (await this.waitExited(cur.id, timeoutSeconds * 1000)) return;
      }
      await runtime.kill(ref, 'KILL', { all: true });
      crashPoint('StopContainer:after-kill');
      if (await this.waitExited(cur.id, KILL_GRACE_MS)) return;
      // No word from the watch: ask once more before saying the process outlived SIGKILL.
      const exit = await runtime.exitStatus(ref).catch(() => undefined);
      if (!exit) throw new DeadlineExceededError(`container ${cur.id} did not exit within ${KILL_GRACE_MS / 1000}s of SIGKILL`);
      this.recordExit(cur.id, exit);
    });
  }

  stopForPod(id: string): Promise<void> {
    return this.stop(id, 0);
  }

  /**
   * A pod's container goes with the pod as RemoveContainer removes it: marked, its remains
   * deleted by the queue; the pod's removal then waits for that deletion to delete its runtime
   * state (below).
   */
  async removeForPod(id: string): Promise<void> {
    if (!this.removals.has(id)) await this.remove(id);
    // The container's cgroup is inside the pod's, and the runtime's delete in its remains removes
    // it: kubelet removes the pod's cgroup once the pod is removed, which a container cgroup
    // still in it would refuse. So the pod waits for that delete in this deletion's next try; a
    // try failing before it fails the pod's removal (kubelet retries it; the queue tries the
    // deletion again). A deletion waiting out its back-off (up to 30 s) is tried at once: kubelet
    // is waiting. The rest (the rootfs's unmount, the writable layer, the dir, the marker: each
    // a synced disk change, together about ten milliseconds) is the container's own, and goes on
    // in the background after the pod is gone.
    if (!this.removals.has(id) || this.runtimeStateGone.has(id)) return;
    await new Promise<void>((resolve, reject) => {
      const waiters = this.removalWaiters.get(id) ?? [];
      waiters.push({ resolve, reject });
      this.removalWaiters.set(id, waiters);
      this.deletions.retryNow(id);
    });
  }

  /** Remove a container (stopping it first if it runs); idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const hits = this.records.matching(idOrPrefix);
    if (hits.length !== 1) {
      if (hits.length > 1) throw new InvalidArgumentError(`container id prefix ${idOrPrefix} is ambiguous`);
      return;
    }
    const rec = hits[0]!;
    if (rec.created && criState(rec) !== 'CONTAINER_EXITED') await this.stop(rec.id, 0);
    await this.locks.run(rec.id, async () => {
      const cur = this.records.get(rec.id);
      if (!cur) return;
      // The marker on disk is the removal: from here on the container is gone for every read,
      // and start-up finishes what the background deletion leaves undone. Image volumes are
      // released before answering: the images they hold may be removed right after.
      const marked = cur.imageVolumes?.length ? undefined : await this.records.retire(cur.id).catch((err: unknown) => {
        // A disk refusing the marker must not keep a container from being removed (that is how
        // space comes back): removed while the caller waits, as a retry after a crash would.
        log.warn({ container: cur.id, err: (err as Error).message }, 'removal not marked on disk; removing before answering');
        return undefined;
      });
      crashPoint('RemoveContainer:after-intent');
      this.stopWatching(cur.id);
      this.names.release(cur.reservedName, cur.id);
      if (marked) {
        this.removals.set(marked.id, marked);
        await this.deletions.add(marked.id, () => this.deleteRemains(marked));
      } else {
        await this.destroy(cur);
      }
      this.emit(cur, 'CONTAINER_DELETED_EVENT');
      log.info({ container: cur.id }, 'container removed');
    });
  }

  /**
   * Deletes a removed container's remains (runtime state and cgroup, rootfs mount, writable
   * layer, dir, marker) after RemoveContainer answered, from the deletion queue: the unmount
   * syncs the upper filesystem and the deletions sync directories, tens of milliseconds on a
   * busy disk kubelet need not wait for. A failure is the queue's to try again.
   */
  private deleteRemains(rec: ContainerRecord): Promise<void> {
    // Behind the removal holding the lock now, and begun only in the next turn of the event
    // loop, so that the answer is on its way before any of it runs.
    return this.locks.run(rec.id, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      try {
        await this.destroy(rec, () => {
          this.runtimeStateGone.add(rec.id);
          this.settleRemovalWaiters(rec.id);
        });
      } catch (err) {
        this.settleRemovalWaiters(rec.id, err);
        throw err;
      }
      this.removals.delete(rec.id);
      this.runtimeStateGone.delete(rec.id);
      this.settleRemovalWaiters(rec.id);
    });
  }

  /** Tells those waiting for a removed container's remains that one try ended (failed: `err`). */
  private settleRemovalWaiters(id: string, err?: unknown): void {
    const waiters = this.removalWaiters.get(id) ?? [];
    this.removalWaiters.delete(id);
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  private stopWatching(id: string): void {
    this.unwatch.get(id)?.();
    this.unwatch.delete(id);
  }

  /**
   * Release everything a container holds; used by remove and by crash recovery. `onRuntimeDeleted`
   * is told once the runtime's state and cgroup are gone, before the rest is.
   */
  private async destroy(rec: ContainerRecord, onRuntimeDeleted?: () => void): Promise<void> {
    const paths = containerPaths(rec.dir);
    this.stopWatching(rec.id);
    const runtime = this.opts.runtimes.find(rec.runtimeHandler);
    // A deletion begun at the exit is awaited: the runtime's delete then has nothing to run. One
    // still waiting for its turn is withdrawn, done by this delete now.
    await this.runtimeDeletions.settle(rec.id);
    const deleteInRuntime = async (): Promise<void> => {
      if (runtime) await runtime.delete(this.ref(rec));
      crashPoint('RemoveContainer:after-runtime-delete');
      onRuntimeDeleted?.();
    };
    const removeRootfs = async (): Promise<void> => {
      await this.opts.snapshots.unmount(paths.rootfs).catch((err: unknown) => {
        if (!['EINVAL', 'ENOENT'].includes(errnoCode(err) ?? '')) throw err;
      });
      crashPoint('RemoveContainer:after-unmount');
      // Moved to the snapshotter's trash (one synced rename); its files are deleted after.
      await this.opts.snapshots.remove(rec.id);
    };
    // The rootfs mount is the host's: a process of the container still running (left in a shared
    // PID namespace) has its own copy in its mount namespace, so the mount and the writable
    // layer can go while the runtime deletes its state (a removal right after the stop: the
    // runtime process is most of its time). Not when a poststop hook, which the runtime's delete
    // runs, may look at the rootfs.
    if (await mayRunPoststopHooks(paths.bundle)) {
      await deleteInRuntime();
      await removeRootfs();
    } else {
      await allOrFirstError([deleteInRuntime(), removeRootfs()]);
    }
    if (rec.imageVolumes) await this.opts.imageVolumes?.release(rec.id, rec.imageVolumes);
    // After the runtime's delete: the monitor's control socket and exit file are in this dir.
    await this.trash.discard(rec.dir);
    await this.records.remove(rec.id);
    this.acked.delete(rec.id);
    this.execTemplates.delete(rec.id);
    this.names.release(rec.reservedName, rec.id);
  }

  // ---- exec, attach, logs, resources ------------------------------------------------------------

  private assertRunning(idOrPrefix: string, what: string): ContainerRecord {
    const rec = this.get(idOrPrefix);
    if (criState(rec) !== 'CONTAINER_RUNNING') {
      throw new FailedPreconditionError(`${what}: container ${rec.id} is not running (${criState(rec).slice(10).toLowerCase()})`);
    }
    return rec;
  }

  /** The process of an exec: the container's own process settings with other args. */
  private async execProcess(rec: ContainerRecord, cmd: string[], tty: boolean): Promise<OciProcess> {
    if (cmd.length === 0 || !cmd[0]) throw new InvalidArgumentError('exec: cmd must not be empty');
    let template = this.execTemplates.get(rec.id);
    if (!template) {
      const spec = await this.spec(rec.id);
      if (!spec) throw new FailedPreconditionError(`container ${rec.id} has no bundle (was the node rebooted?)`);
      template = spec.process;
      // Not for a container whose record went while its bundle was read: nothing would drop it.
      if (this.records.get(rec.id)) this.execTemplates.set(rec.id, template);
    }
    return { ...template, args: cmd, terminal: tty } as OciProcess;
  }

  async execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult> {
    const rec = this.assertRunning(idOrPrefix, 'ExecSync');
    const res = await this.runtimeOf(rec).execSync(this.ref(rec), await this.execProcess(rec, cmd, false), {
      timeoutSeconds, maxOutput: EXEC_SYNC_MAX_OUTPUT,
    });
    if (res.timedOut) {
      throw new DeadlineExceededError(`ExecSync: command ${JSON.stringify(cmd)} timed out after ${timeoutSeconds}s and was killed`);
    }
    return res;
  }

  /** A streaming exec (the streaming server's): the container must be running. */
  async exec(idOrPrefix: string, cmd: string[], o: { stdin: boolean; tty: boolean }): Promise<ExecSession> {
    const rec = this.assertRunning(idOrPrefix, 'exec');
    return this.runtimeOf(rec).exec(this.ref(rec), await this.execProcess(rec, cmd, o.tty), o);
  }

  /** Attaches to a running container's stdio (the streaming server's). */
  async attach(idOrPrefix: string): Promise<AttachTarget> {
    const rec = this.assertRunning(idOrPrefix, 'attach');
    const runtime = this.runtimeOf(rec);
    const ref = this.ref(rec);
    return { record: rec, io: await runtime.attach(ref), resize: (rows, cols) => runtime.resize(ref, rows, cols) };
  }

  /** Ask the monitor to reopen the log file (kubelet rotated it); resolves once it is open. */
  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = this.assertRunning(idOrPrefix, 'ReopenContainerLog');
    await this.runtimeOf(rec).reopenLog(this.ref(rec));
  }

  async updateResources(idOrPrefix: string, resources: LinuxContainerResources__Output | null | undefined): Promise<void> {
    const rec = this.get(idOrPrefix);
    const state = criState(rec);
    if (state === 'CONTAINER_EXITED') throw new FailedPreconditionError(`container ${rec.id} has exited: its resources cannot change`);
    const limits = containerResources({
      resources,
      cgroupVersion: cgroupVersion(),
      swapAvailable: this.facts.swapAvailable,
      hugetlbAvailable: this.facts.hugetlbAvailable,
    });
    const record = (): void => {
      // Applied: memory says so now, the disk as soon as it can.
      this.records.updateSoon(rec.id, (r) => {
        r.config.linux = { ...(r.config.linux ?? {}), resources: resources ?? null } as typeof r.config.linux;
      });
    };
    if (rec.monitorPid) {
      await this.runtimeOf(rec).update(this.ref(rec), limits);
      record();
      return;
    }
    // Nothing in the runtime yet (CREATED): the limits go into the spec its create will read,
    // under the lock so that a start does not read the spec meanwhile.
    await this.locks.run(rec.id, async () => {
      const cur = this.records.get(rec.id);
      if (!cur || criState(cur) === 'CONTAINER_EXITED') throw new FailedPreconditionError(`container ${rec.id} has exited: its resources cannot change`);
      if (cur.monitorPid) await this.runtimeOf(cur).update(this.ref(cur), limits);
      else await applyResourcesToSpec(join(containerPaths(cur.dir).bundle, 'config.json'), limits);
      record();
    });
  }

}
