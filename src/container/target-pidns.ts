// The PID namespace a TARGET-mode container joins (kubectl debug --target), held open from the
// moment the target is verified until the runtime has joined it (in StartContainer, where the
// runtime's create runs; CreateContainer only checks that the target runs).
//
// Why held: the runtime joins a namespace by path, and /proc/<pid>/ns/pid names whatever process
// has that pid when the runtime opens it, seconds later (the rootfs is prepared in between). Had
// the target exited and its pid gone to another process by then, the debug container would join
// that process's PID namespace (the node's own, for any host process) and see its processes.
// So the namespace is opened here, while the pid is verified to be still the target's init (its
// start time from /proc/<pid>/stat equals the one crib recorded, checked after the open), and the
// runtime is given (written into the bundle's spec just before its create) /proc/<daemon pid>/fd/<fd>: a path to this very namespace for as long as
// the daemon holds the descriptor, whatever happens to the pid.
import { open, type FileHandle } from 'node:fs/promises';
import { NotFoundError } from '../errors.js';
import { daemonFdPath } from '../sys/daemon-fd-path.js';
import { processAlive } from '../sys/process-identity.js';

/** The target container's init, as crib recorded it. */
export interface TargetInit {
  id: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat when crib recorded the pid; undefined in old records. */
  pidStartTime?: string;
}

export interface HeldPidNamespace {
  /** What the spec's pid namespace path is: valid while this is not closed. */
  readonly path: string;
  /** Whether the target's init is still the process crib recorded, alive. */
  targetRunning(): boolean;
  /** The error for a target that exited before the runtime joined its namespace. */
  exitedError(): NotFoundError;
  close(): Promise<void>;
}

const notRunning = (call: string, id: string, detail: string) =>
  new NotFoundError(`${call}: namespaceOptions.targetId: container ${id} ${detail}, so it has no PID namespace to join`);

/**
 * Opens the target's PID namespace; NotFoundError (its message begins with `call`, the CRI call
 * the runtime joins it in) when the target is not (or no more) running.
 */
export async function holdTargetPidNamespace(target: TargetInit, call: string): Promise<HeldPidNamespace> {
  const alive = () => processAlive(target.pid, target.pidStartTime);
  if (!alive()) throw notRunning(call, target.id, 'is not running');
  let fh: FileHandle;
  try {
    fh = await open(`/proc/${target.pid}/ns/pid`, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The process went between the check and the open.
    if (code === 'ENOENT' || code === 'ESRCH') throw notRunning(call, target.id, 'is not running (its init exited)');
    throw err;
  }
  // Verified after the open: if the recorded process still has the pid now, it had it when the
  // namespace was opened (a pid is not reused while its process lives), so the descriptor is the
  // target's namespace and not that of a process that got the pid in between.
  if (!alive()) {
    await fh.close();
    throw notRunning(call, target.id, 'exited while its PID namespace was being opened');
  }
  return {
    path: daemonFdPath(fh.fd),
    targetRunning: alive,
    exitedError: () => notRunning(call, target.id, 'exited before the new container could join its PID namespace'),
    close: () => fh.close(),
  };
}

/**
 * Test hook (CRIB_TEST_HOOKS=1): CRIB_TEST_TARGET_PIDNS_STALL_MS waits that long after the target
 * was checked, standing for a slow rootfs preparation, so a test can make the target exit and
 * its pid go to another process before the runtime joins the namespace (StartContainer's window). The log line tells the
 * test when the wait began.
 */
const stallMs = process.env.CRIB_TEST_HOOKS === '1' ? Number(process.env.CRIB_TEST_TARGET_PIDNS_STALL_MS ?? 0) : 0;

export async function stallAfterTargetCheck(clog: { warn: (o: object, msg: string) => void }, target: TargetInit): Promise<void> {
  if (!(stallMs > 0)) return;
  clog.warn({ target: target.id, pid: target.pid, ms: stallMs }, 'test hook: stalling after the TARGET PID namespace check');
  await new Promise((resolve) => setTimeout(resolve, stallMs));
}
