// Runs short-lived helper commands (the OCI runtime's start/kill/delete/state, and runCommand's
// ip/nft/crib-pinns: the pod path's pinning, veth
// attach and detach), and launches the detached crib-monitors of StartContainer and streaming
// exec, from one worker thread instead of the event loop's thread. It lives in sys/
// so that every layer's helpers (runtime/, network/, sandbox/) share the one thread.
//
// Why: libuv's spawn on Linux forks, and the calling thread is blocked until the child has
// copied the daemon's page tables and exec'd. The cost grows with the daemon's memory: measured
// on this project's 2-core machine, ~3 ms at an empty heap and ~40 ms at 150 MiB, longer again
// when the cores are busy. kubelet probes every pod every 10 s, so at 110 pods the main thread
// spent a third of its time in spawn() (CPU profile of bench/kubelet.ts), and every other RPC —
// a relist is a few ms of work — waited behind those forks. On a worker thread the fork blocks
// only that thread; the main thread keeps answering (fork still briefly holds the process's
// memory map, so a page fault on the main thread can wait, but its JavaScript runs on).
//
// ExecSync, the most frequent spawn (kubelet's probes), does not fork at all: posix-spawn.ts.
//
// One thread, started on first use and unref'd (it never keeps the daemon alive). It ends once it
// has had no call for SPAWN_THREAD_IDLE_MS: its isolate holds ~10 MiB of resident memory, which a
// node without pods (or with pods but no exec probes) should not carry. A new one starts on the
// next call, which pays the thread's start-up (measured: see SPAWN_THREAD_IDLE_MS). The commands
// bound their own run time (exec-sync enforces the exec's timeout) and output (--max-output); a
// detached launch's stderr and sync line are bounded by the thread (spawn-thread-worker.ts:
// DETACHED_STDERR_KEEP, SYNC_LINE_MAX). If the thread dies, the calls in flight fail with a
// message saying so and the next call starts a new thread.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { log } from '../log.js';
import { mallocTrim } from './libc.js';

/** execFile's bounds for a command run with execFileOnThread. */
export interface ExecOptions {
  /** Killed with killSignal after this long. */
  timeoutMs: number;
  /** The timeout's signal; SIGKILL unless set (a runtime ignoring SIGTERM must not outlive it). */
  killSignal?: NodeJS.Signals;
  /** Stdout or stderr beyond this many bytes kills the command and fails it. */
  maxBuffer: number;
  /** Written to its stdin, which is then closed. */
  input?: string;
  /** The thread posts each chunk of stdout as it arrives (SpawnChunk), before the reply. */
  streamStdout?: boolean;
}
/** execFileOnThread's options: execFile's bounds, and where to report stdout as it arrives. */
export interface ExecCall extends Omit<ExecOptions, 'streamStdout'> {
  /**
   * Each chunk of stdout as the command writes it (a helper reporting progress before it ends),
   * all of them before the call resolves; the resolved stdout still holds everything.
   */
  onStdout?: (chunk: string) => void;
}
export interface SpawnRequest {
  id: number;
  file: string;
  args: string[];
  exec?: ExecOptions;
  /** A process that daemonises and reports on fd 3 (spawnDetachedOnThread). */
  detached?: boolean;
}
export interface SpawnReply { id: number; stdout: string; stderr: string; code: number | null; killed?: boolean; error?: string }
/** A chunk of a streamed stdout; the thread posts them in order, all before the call's reply. */
export interface SpawnChunk { id: number; stdoutChunk: string }
/** A detached call's first process has exited (its stderr read to the end); posted before the call's reply. */
export interface SpawnExited { id: number; exited: DetachedExit }
/** How the first process of a detached call ended: its exit code (null: killed, or never started) and stderr. */
export interface DetachedExit { code: number | null; stderr: string }
export interface SpawnResult { stdout: string; stderr: string; code: number | null; error?: Error }
/** execFileOnThread's answer: `error` set when the command failed (its message is execFile's), `killed` when its time ran out. */
export interface ExecResult extends SpawnResult { killed: boolean }

/** Built: spawn-thread-worker.js beside this file; from source (vitest, tsx): the .ts, loaded with tsx registered in the thread. */
function workerEntry(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./spawn-thread-worker.js', here);
  const tsxDir = dirname(createRequire(here).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./spawn-thread-worker.ts', here).href;
  const boot = `const api = await import(${JSON.stringify(tsx)}); api.register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/**
 * How long the thread may go without a call before it ends. Starting one costs the call that
 * finds none: measured on this project's 2-core machine under load (load average 4.5, the built
 * daemon's node flags, N=21), /bin/true took 81 ms median (p95 97) as the first call of a new
 * thread against 4.7 ms (p95 6.9) on a warm one. kubelet's steady load is an exec probe every 10 s
 * (its default period) per pod that has one: 35 s keeps the thread through three probe rounds, so
 * a node with probed pods never restarts it, and a node whose pods are not probed pays those
 * ~80 ms at most once per 35 s of quiet, while it holds ~10 MiB less meanwhile.
 */
export const SPAWN_THREAD_IDLE_MS = 35_000;
/**
 * Test hook (CRIB_TEST_HOOKS=1): CRIB_TEST_SPAWN_THREAD_IDLE_MS replaces SPAWN_THREAD_IDLE_MS in a
 * daemon (bench/daemon-memory.ts sees the idle stop within its few seconds of settling).
 */
const hookIdleMs = process.env.CRIB_TEST_HOOKS === '1' ? Number(process.env.CRIB_TEST_SPAWN_THREAD_IDLE_MS ?? 0) : 0;
const defaultIdleMs = hookIdleMs > 0 ? hookIdleMs : SPAWN_THREAD_IDLE_MS;
let idleMs = defaultIdleMs;

let worker: Worker | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;
interface Call {
  done: (r: SpawnReply | { error: string; thread: true }) => void;
  onStdout?: (chunk: string) => void;
  onExited?: (exited: DetachedExit) => void;
}
const pending = new Map<number, Call>();
/** Threads ended for idleness whose exit has not been seen yet (spawnThreadStopped waits on them). */
const ending = new Set<Promise<void>>();

/**
 * Ends the thread once it is idle: forgotten first (a call from now on starts a new thread, so
 * none can be posted to one that is going away), then terminated. With nothing in flight it has
 * no child to read and no reply to send, so terminating loses nothing.
 */
function armIdleStop(w: Worker): void {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    if (worker !== w || pending.size > 0) return;
    worker = undefined;
    // The isolate's heap is unmapped as it goes; the thread's malloc arenas are handed back by a
    // trim (measured ~0.7 MiB more, for 1-2 ms once per idle stop).
    const gone = w.terminate().then(() => void mallocTrim(), () => undefined);
    ending.add(gone);
    void gone.finally(() => ending.delete(gone));
  }, idleMs);
  idleTimer.unref();
}

/** Whether a spawn thread is running now (tests, and the memory benchmark's notes). */
export function spawnThreadRunning(): boolean {
  return worker !== undefined;
}

/** Resolves once every thread ended for idleness has exited. */
export async function spawnThreadStopped(): Promise<void> {
  await Promise.all([...ending]);
}

/** Tests: a shorter idle time (the default when undefined). */
export function setSpawnThreadIdleMs(ms: number | undefined): void {
  idleMs = ms ?? defaultIdleMs;
}

/** Tests: kills the thread as a crash would (its calls in flight must fail, not hang). */
export async function crashSpawnThreadForTest(): Promise<void> {
  await worker?.terminate();
}

function thread(): Worker {
  clearTimeout(idleTimer);
  idleTimer = undefined;
  if (worker) return worker;
  const w = new Worker(workerEntry());
  const died = (why: string): void => {
    if (worker !== w) return;
    worker = undefined;
    log.warn({ why, inFlight: pending.size }, 'the spawn thread stopped');
    for (const [id, call] of pending) {
      pending.delete(id);
      call.done({ error: `the daemon's spawn thread ${why}`, thread: true });
    }
  };
  w.on('message', (r: SpawnReply | SpawnChunk | SpawnExited) => {
    const call = pending.get(r.id);
    if ('stdoutChunk' in r) {
      call?.onStdout?.(r.stdoutChunk);
      return;
    }
    if ('exited' in r) {
      call?.onExited?.(r.exited);
      return;
    }
    pending.delete(r.id);
    if (pending.size === 0) {
      w.unref();
      armIdleStop(w);
    }
    call?.done(r);
  });
  w.on('error', (err) => died(`failed: ${err.message}`));
  w.on('exit', (code) => died(`exited with code ${code}`));
  worker = w;
  return w;
}

function post(req: Omit<SpawnRequest, 'id'>, events: Omit<Call, 'done'> = {}): Promise<SpawnReply | { error: string; thread: true }> {
  const w = thread();
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, { done: resolve, ...events });
    // Referenced while a call is in flight (its reply must arrive), unref'd when idle.
    w.ref();
    w.postMessage({ id, ...req } satisfies SpawnRequest);
  });
}

/** Runs `file args` (stdin /dev/null) on the spawn thread; resolves with its whole stdout and stderr and its exit code. */
export async function spawnOnThread(file: string, args: string[]): Promise<SpawnResult> {
  const r = await post({ file, args });
  if ('thread' in r) return { stdout: '', stderr: '', code: null, error: new Error(r.error) };
  return { stdout: r.stdout, stderr: r.stderr, code: r.code, error: r.error === undefined ? undefined : new Error(r.error) };
}

/**
 * Node's execFile (utf8 output, the bounds in `opts`) on the spawn thread: for commands on the
 * RPC paths, whose fork would otherwise stall every other RPC (and the background work that
 * follows a call, e.g. the runtime's delete after RemoveContainer, the next call).
 */
export async function execFileOnThread(file: string, args: string[], opts: ExecCall): Promise<ExecResult> {
  const { onStdout, ...bounds } = opts;
  const r = await post({ file, args, exec: { ...bounds, streamStdout: onStdout !== undefined } }, { onStdout });
  if ('thread' in r) return { stdout: '', stderr: '', code: null, killed: false, error: new Error(r.error) };
  return { stdout: r.stdout, stderr: r.stderr, code: r.code, killed: r.killed ?? false, error: r.error === undefined ? undefined : new Error(r.error) };
}

/**
 * Spawns `file args` on the spawn thread as a process that daemonises (crib-monitor): its first
 * process exits once the detached one is on its own, which later writes one line on fd 3 (a pipe
 * the thread reads) and closes it. `exited` resolves when the first process has exited, with its
 * stderr read to the end (the first 64 KiB kept); `syncLine` with that line ("" when fd 3 closed
 * without one; rejected when it passed 4 KiB without a newline), never before `exited` (the
 * thread's reply comes after both). The fork of a launch on an RPC path
 * (StartContainer, a streaming exec) stalls only the thread; the line crossing the thread costs
 * the caller a thread switch.
 */
export function spawnDetachedOnThread(file: string, args: string[]): { exited: Promise<DetachedExit>; syncLine: Promise<string> } {
  let onExited!: (exited: DetachedExit) => void;
  const exited = new Promise<DetachedExit>((resolve) => {
    onExited = resolve;
  });
  const reply = post({ file, args, detached: true }, { onExited });
  const syncLine = reply.then((r) => {
    // A thread that died before the first process was seen to exit: the launch failed here.
    if ('thread' in r) onExited({ code: null, stderr: r.error });
    // A sync line past its bound: the launch's report cannot be trusted, so it fails.
    if (!('thread' in r) && r.error !== undefined) throw new Error(r.error);
    return 'thread' in r ? '' : r.stdout;
  });
  return { exited, syncLine };
}
