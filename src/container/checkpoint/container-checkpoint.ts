// CheckpointContainer's work, for one running container: the runtime dumps its processes
// (leaving them running, as kubelet's forensic checkpointing expects), its upper dir becomes the
// rootfs diff, and the archive (checkpoint-archive.ts) is written to the location. All of it
// within the timeout: when it expires the runtime is killed (criu with it) and what was made so
// far is removed; the location is only ever renamed into once the archive is complete.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineExceededError, FailedPreconditionError } from '../../errors.js';
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
  // In the container's state dir: removed with the container if we die before the finally.
  const work = join(subject.ref.dir, `checkpoint-${randomBytes(6).toString('hex')}`);
  const images = join(work, 'images');
  try {
    await mkdir(images, { recursive: true, mode: 0o700 });
    if (stallMs > 0) await sleep(stallMs, undefined, { signal });
    signal.throwIfAborted();
    await runtime.checkpoint(subject.ref, {
      imagePath: images, workPath: work, leaveRunning: true, timeoutMs: Math.max(1, deadline - Date.now()),
    }).catch((err: unknown) => keepFailedLog(err, work, subject.ref.dir));
    const diffTar = join(work, 'rootfs-diff.tar');
    const diff = await writeRootfsDiff(subject.upperdir, diffTar, signal);
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
    await rm(work, { recursive: true, force: true });
  }
}
