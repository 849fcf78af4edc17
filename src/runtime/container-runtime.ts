// The container-runtime port: everything the daemon does to a container's processes goes through
// it (what CRI-O calls oci.RuntimeImpl). ContainerService and the streaming server depend only on
// this interface; MonitoredRuntime (crib-monitor driving a runc-CLI runtime) is the one real
// implementation, one instance per RuntimeClass handler, and test-support/fake-container-runtime
// is the one the unit tests use. The port owns the runtime's files inside a container's state dir
// (runtime-files.ts: exit file, attach and control sockets, exec files); the caller owns the rest
// of that dir (the bundle and its rootfs) and removes the dir.
import type { Socket } from 'node:net';
import type { RuntimeFeatures } from './runtime-features.js';

/** A container as the runtime knows it. */
export interface RuntimeRef {
  id: string;
  /** The container's state dir; the runtime keeps its own files there. */
  dir: string;
  /** The container's init process and its start time (/proc/<pid>/stat field 22): a pid alone
   * may belong to another process by now. Absent before create, and start times in records
   * written before they were kept. */
  pid?: number;
  pidStartTime?: string;
  monitorPid?: number;
  monitorStartTime?: string;
  /** The CRI log file, once created. */
  logPath?: string;
}

export interface CreateOptions {
  /** OCI bundle (config.json and rootfs). */
  bundle: string;
  /** The CRI log file the container's output goes to. */
  logPath: string;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
}

export interface Created {
  pid: number;
  pidStartTime?: string;
  monitorPid: number;
  monitorStartTime?: string;
}

/** How a process ended, as its monitor saw it. exitCode is 128+signal for a signalled process. */
export interface ExitRecord {
  exitCode: number;
  signal: number | null;
  /** RFC 3339 with nanoseconds. */
  exitedAt: string;
  oomKilled: boolean;
}

/**
 * What watch() reports, once: the process exited (from the monitor, live or from its exit file),
 * or its monitor is gone without a word, so nobody will ever report the exit (killOrphan() then
 * finds out what became of the process).
 */
export type RuntimeEvent =
  | { kind: 'exited'; exit: ExitRecord }
  | { kind: 'monitor-gone'; detail: string };

/** The `process` object of an OCI spec, as `<runtime> exec --process` takes it. */
export type OciProcess = Record<string, unknown> & { args: string[]; terminal?: boolean };

export interface ExecSyncResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  truncated: boolean;
}

/** One streaming exec (kubectl exec): its output and input on the attach-framed socket. */
export interface ExecSession {
  readonly pid: number;
  /** Frames out (attach-socket.ts), raw bytes in; ends after the process exited. */
  readonly io: Socket;
  resize(rows: number, cols: number): Promise<void>;
  /** The exit, or a rejection when none comes within timeoutMs. */
  exited(timeoutMs: number): Promise<ExitRecord>;
  /** Kills the process (the client went away) unless it already exited. */
  kill(): void;
  /** Frees the session's files and connections; call once its exit is known or it was killed. */
  close(): Promise<void>;
}

/** What checkpoint() is asked for (runc's `checkpoint` flags). */
export interface CheckpointOptions {
  /** Where the runtime (criu) writes the images: an empty directory of the caller's. */
  imagePath: string;
  /** criu's work directory (its dump.log); the caller's, may be imagePath. */
  workPath: string;
  /** The container keeps running after the dump (kubelet's forensic checkpointing). */
  leaveRunning: boolean;
  /** The runtime is killed after this long (its criu with it): DeadlineExceededError. */
  timeoutMs: number;
}

/** Where a started container's process stands, for completing an interrupted start. */
export type StartState = 'parked' | 'started' | 'gone';

export interface ContainerRuntime {
  readonly handler: string;
  readonly features: RuntimeFeatures;

  /** Creates the container, parked before its process runs; the monitor is running after.
   * ContainerService calls it at StartContainer (a CREATED container has nothing here). */
  create(c: RuntimeRef, o: CreateOptions): Promise<Created>;
  /** Releases the parked process. */
  start(c: RuntimeRef): Promise<void>;
  /**
   * Dumps the running container's process tree into o.imagePath (criu images, as the runtime's
   * `checkpoint` writes them). A runtime or criu failure is a FailedPreconditionError carrying
   * the runtime's own message (criu's last error line and its log's path).
   */
  checkpoint(c: RuntimeRef, o: CheckpointOptions): Promise<void>;
  /**
   * Freezes every process of the running container (the cgroup freezer: they cannot tell), until
   * resume. A checkpoint of a paused container leaves it paused. Fails (FailedPreconditionError,
   * the runtime's message) when the container cannot be frozen.
   */
  pause(c: RuntimeRef): Promise<void>;
  /** Thaws what pause froze; a container that is not paused, or no longer runs, is no error. */
  resume(c: RuntimeRef): Promise<void>;
  /**
   * Like create, but the process is the one checkpointed into imagePath, restored by the
   * runtime's `restore` under a new monitor: it is running (not parked) when this resolves, so
   * there is no start() for it.
   */
  restore(c: RuntimeRef, o: CreateOptions & { imagePath: string }): Promise<Created>;
  /** Whether start already released the process (a start interrupted by a crash). */
  startState(c: RuntimeRef): Promise<StartState>;
  /** Signals the process (all: every process of the container); one that is gone is no error. */
  kill(c: RuntimeRef, signal: string, o?: { all?: boolean }): Promise<void>;
  /** Forgets the container: stops watching it, lets its monitor go, removes the runtime's state
   * (killing what still runs). A container the runtime never heard of is already deleted, and
   * one whose state deleteExited removed has nothing left to run. waitForMonitor: resolves only
   * once the monitor is gone too (its pid may be unknown). */
  delete(c: RuntimeRef, o?: { waitForMonitor?: boolean }): Promise<void>;
  /**
   * Removes the runtime's state of a container whose exit the daemon has recorded (call it after
   * exitRecorded): its cgroup goes with it, and what else of the container still runs is killed
   * (processes left in a shared PID namespace). What containerd's CRI plugin does when it
   * handles a task's exit; delete() later has nothing to spawn. A container the runtime has no
   * state of is nothing to delete. Rejects when the runtime fails; delete() then tries again.
   */
  deleteExited(c: RuntimeRef): Promise<void>;
  update(c: RuntimeRef, resources: unknown): Promise<void>;

  execSync(c: RuntimeRef, proc: OciProcess, o: { timeoutSeconds: number; maxOutput: number }): Promise<ExecSyncResult>;
  exec(c: RuntimeRef, proc: OciProcess, o: { stdin: boolean; tty: boolean }): Promise<ExecSession>;
  /** The container's attach socket (frames out, stdin in). */
  attach(c: RuntimeRef): Promise<Socket>;
  resize(c: RuntimeRef, rows: number, cols: number): Promise<void>;
  /** Resolves once the log file is open again at its path (kubelet renamed it). */
  reopenLog(c: RuntimeRef): Promise<void>;

  /**
   * Watches the container until its exit or the death of its monitor, reported once through
   * onEvent. Resolves once the current state is known (an exit that happened while nobody
   * watched is reported before that); the function it resolves to stops watching.
   */
  watch(c: RuntimeRef, onEvent: (e: RuntimeEvent) => void): Promise<() => void>;
  /** The exit, from the monitor while it lives, else from its exit file; undefined while running. */
  exitStatus(c: RuntimeRef): Promise<ExitRecord | undefined>;
  /** The daemon has recorded the exit itself: the monitor need not wait for its exit file. */
  exitRecorded(c: RuntimeRef): Promise<void>;
  /**
   * After its monitor died: kills whatever of the container still runs and resolves once it is
   * gone; true when something was still running (pid and start time matched).
   */
  killOrphan(c: RuntimeRef): Promise<boolean>;
}
