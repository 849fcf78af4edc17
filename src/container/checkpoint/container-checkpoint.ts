// CheckpointContainer's work, for one running container: the runtime dumps its processes
// (leaving them running, as kubelet's forensic checkpointing expects), its upper dir becomes the
// rootfs diff, and the archive (checkpoint-archive.ts) is written to the location. All of it
// within the timeout: when it expires the runtime is killed (criu with it) and what was made so
// far is removed; the location is only ever renamed into once the archive is complete.
//
// The container is paused (its cgroup frozen) from before the dump until its rootfs diff is
// written, so that the files and the processes in the archive are of one moment: a process
// restored from it finds its files as it left them. Left running, a container that writes went
// on writing between the dump and the diff: a restored counter found a count in its file that it
// had not reached, and a file rewritten while it was read failed the checkpoint (the tar's entry
// no longer had the size its header said). Podman and CRI-O take the diff with the container
// running. Paused, the container does not run for the dump and the diff; it runs while the
// archive (criu's images, the bulk of it) is written.
//
// A crash while it is paused leaves it so: the work dir, in the container's state dir, says that
// a checkpoint was under way, and start-up resumes the container (finishInterruptedCheckpoint).
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineExceededError, FailedPreconditionError } from '../../errors.js';
import { crashPoint } from '../../lifecycle/crash-point.js';
import { log } from '../../log.js';
import type { ContainerRuntime, RuntimeRef } from '../../runtime/container-runtime.js';
import { writeCheckpointArchive, type ConfigDump } from './checkpoint-archive.js';
import { writeRootfsDiff } from './rootfs-diff.js';
import { isoTime } from '../../time.js';

/** CRI's timeout 0: no timeout given. kubelet passes its own; this bounds a direct caller. */
export const DEFAULT_CHECKPOINT_TIMEOUT_S = 300;
/** The most a timeout may ask. */
export const MAX_CHECKPOINT_TIMEOUT_S = 24 * 3600;

/**
 * Test hook (CRIB_TEST_HOOKS=1): CRIB_TEST_CHECKPOINT_STALL_MS delays the checkpoint inside its
 * deadline, before the runtime runs, so a test can make a short timeout expire on any node.
 */
const stallMs = process.env.CRIB_TEST_HOOKS === '1' ? Number(process.env.CRIB_TEST_CHECKPOINT_STALL_MS ?? 0) : 0;

export interface CheckpointSubject {
  ref: RuntimeRef;
  config: ConfigDump;
  /** The bundle's config.json. */
  specPath: string;
  /** The writable layer's upper dir. */
  upperdir: string;
}

/** The checkpoint's work dir in the container's state dir, there only while one is under way. */
export const CHECKPOINT_WORK_DIR = 'checkpoint-work';

/** The log of the last failed dump, kept in the container's state dir (removed with it). */
export const FAILED_DUMP_LOG = 'checkpoint-failed-dump.log';

/**
 * A failed dump names criu's log, which is in the work dir about to be removed: the log is
 * moved beside it into the container's state dir, and the message names it there.
 */
async function keepFailedLog(err: unknown, work: string, containerDir: string): Promise<never> {
  if (!(err instanceof FailedPreconditionError)) throw err;
  const kept = join(containerDir, FAILED_DUMP_LOG);
  try {
    await rename(join(work, 'dump.log'), kept);
  } catch {
    throw err; // no log to keep: the message stands as it is
  }
  throw new FailedPreconditionError(err.message.replaceAll(join(work, 'dump.log'), kept), { cause: err });
}

/** `callSignal`: the RPC's own (its client went away or its deadline passed): stops it too. */
export async function checkpointContainer(runtime: ContainerRuntime, subject: CheckpointSubject, location: string, timeoutS: number,
  callSignal?: AbortSignal): Promise<void> {
  const seconds = timeoutS > 0 ? Math.min(timeoutS, MAX_CHECKPOINT_TIMEOUT_S) : DEFAULT_CHECKPOINT_TIMEOUT_S;
  const deadline = Date.now() + seconds * 1000;
  const timeout = AbortSignal.timeout(seconds * 1000);
  const signal = callSignal ? AbortSignal.any([timeout, callSignal]) : timeout;
  const id = subject.ref.id;
  const expired = () => new DeadlineExceededError(`CheckpointContainer: checkpointing container ${id} took longer than its timeout of ${seconds} s; nothing was written to ${location}`);
  // In the container's state dir: removed with the container if we die before the finally, and
  // its being there tells start-up to resume the container.
  const work = join(subject.ref.dir, CHECKPOINT_WORK_DIR);
  const images = join(work, 'images');
  let paused = false;
  try {
    // What an earlier checkpoint left must not join this one, and the container it kept paused
    // (its resume failed) is resumed first.
    await finishInterruptedCheckpoint(runtime, subject.ref);
    await mkdir(images, { recursive: true, mode: 0o700 });
    if (stallMs > 0) await sleep(stallMs, undefined, { signal });
    signal.throwIfAborted();
    await runtime.pause(subject.ref);
    paused = true;
    crashPoint('CheckpointContainer:after-pause');
    await runtime.checkpoint(subject.ref, {
      imagePath: images, workPath: work, leaveRunning: true, timeoutMs: Math.max(1, deadline - Date.now()),
    }).catch((err: unknown) => keepFailedLog(err, work, subject.ref.dir));
    const diffTar = join(work, 'rootfs-diff.tar');
    const diff = await writeRootfsDiff(subject.upperdir, diffTar, signal);
    await runtime.resume(subject.ref);
    paused = false;
    await writeCheckpointArchive(location, {
      imagesDir: images,
      config: { ...subject.config, checkpointedTime: isoTime() },
      spec: await readFile(subject.specPath, 'utf8'),
      rootfsDiffTar: diffTar,
      deleted: diff.deleted,
    }, signal);
  } catch (err) {
    if (timeout.aborted || err instanceof DeadlineExceededError) throw expired();
    throw err;
  } finally {
    // Resumed on every way out; one the runtime would not resume keeps the work dir, for
    // start-up to resume it.
    if (!paused || await resumeOrLog(runtime, subject.ref)) await rm(work, { recursive: true, force: true });
  }
}

/** Resumes a container a failed checkpoint paused; false (logged) when the runtime refused. */
async function resumeOrLog(runtime: ContainerRuntime, ref: RuntimeRef): Promise<boolean> {
  try {
    await runtime.resume(ref);
    return true;
  } catch (err) {
    log.error({ container: ref.id, err }, 'resuming a container after its failed checkpoint failed: it stays paused until the daemon\'s next start');
    return false;
  }
}

/**
 * A checkpoint a crash interrupted may have left its container paused: its work dir says one was
 * under way. The container is resumed (one not paused is no error) and the dir removed. Start-up
 * calls it for every container that runs; resolves to whether there was one.
 */
export async function finishInterruptedCheckpoint(runtime: ContainerRuntime, ref: RuntimeRef): Promise<boolean> {
  const work = join(ref.dir, CHECKPOINT_WORK_DIR);
  if (!(await stat(work).catch(() => undefined))) return false;
  await runtime.resume(ref);
  await rm(work, { recursive: true, force: true });
  return true;
}
