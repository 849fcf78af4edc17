// The V8, Node and malloc settings the daemon runs with, defined here and nowhere else. `crib
// daemon` re-executes itself with them (same pid: systemd, the README's start command,
// install.sh's wrapper and the tests all start it the same way and get the same daemon), because
// V8 reads heap sizes, and glibc its malloc tunables, only when the process starts.
import { closeSync } from 'node:fs';
import type { CribConfig } from '../config/config.js';
import { execve, mallocSettingGiven } from '../sys/libc.js';
import { CONFIG_FD_ENV, handOffConfig } from './config-handoff.js';

// Measured, not guessed (issue 14). Fresh daemon, VmRSS 3 s after it answers; then 9 rounds of
// 1 500 mixed RPCs (lists, statuses, stats) with 20 pods, the variants' rounds alternated in one
// run on the shared 2-core machine, the daemon's CPU seconds per round (median):
//   Node defaults                                     idle 73.0 MiB, CPU 1.89 s, after 114.8 MiB
//   --max-semi-space-size=2 --v8-pool-size=2          idle 70.2 MiB, CPU 1.68 s, after  87.9 MiB
//   --max-semi-space-size=1 --v8-pool-size=2          idle 68.6 MiB, CPU 1.84 s, after  83.3 MiB
// (CPU per round swings 1.1-2.8 s with the machine's load: no difference the runs can tell.)
// - --max-semi-space-size: V8's young generation is two semi-spaces of up to 16 MiB each on
//   64-bit, and under load they grow to that and stay resident. The daemon's garbage is small and
//   short-lived (gRPC messages, JSON records): 1 MiB semi-spaces scavenge more often, for no CPU
//   the rounds could see, and keep the daemon 30 MiB smaller once it has been busy.
// - --v8-pool-size: V8's background threads (concurrent marking, compilation) default to 4, each
//   with its own stack and malloc arena; 2 matches the cores a node gives a runtime (1.8 MiB idle).
// - V8's optimising compiler (TurboFan) is on, the default. It was off (--max-opt=2) until the
//   daemon was bundled: TurboFan's own code in the node binary, touched as soon as it optimises
//   anything, start-up code included, is about 4 MiB of resident pages, and with it the memory
//   goals (60 MiB idle, 80 with 100 pods) were lost (bench/daemon-memory.ts, N=3, 100 pods:
//   fresh 57.4 -> 61.6 MiB, with 100 pods 73.7 -> 80.0). Deferring it did not work: a larger
//   --interrupt-budget kept it out of start-up only at 80 times the default, where it never
//   reached the RPC paths either (bench/rpc-ab.ts, 2,000 calls a method: no faster), and V8's
//   tiering flags do not change once the process runs. The bundle (deploy/bundle-daemon.mjs)
//   made room: the bundled build with --max-opt=2 as A and without it as B, alternated, N=3,
//   100 pods: fresh 54.7 -> 59.2 MiB, after a pull and 100 pods 67.7 -> 73.1, with 100 pods 72.7 ->
//   78.9, both goals kept; and bench/rpc-ab.ts N=20: median latency of the seven in-memory
//   methods -20% to -34% (ContainerStatus 0.359 -> 0.270 ms, ListContainers 0.341 -> 0.224),
//   p95 lower on all seven. The daemon's CPU for the pull and pods: 5.83 -> 6.10 s (compiling).
// - --no-expose-wasm: the daemon runs no WebAssembly. Without the flag, protobufjs's `long`
//   compiles and instantiates a small wasm module as it loads (its fast 64-bit multiply and
//   divide; long.js falls back to plain JavaScript without it, and Node's own ES module loader
//   does the same for its CommonJS export lexer), and that costs the daemon's resident memory:
//   bench/daemon-memory.ts, N=3, 20 pods, without the flag as A: fresh 59.1 -> 58.4 MiB, restarted
//   with pods running 60.3 -> 59.6. And with no WebAssembly there is no wasm compiler for a bug
//   in it to be reached through.
// Not adopted: --max-old-space-size (a ceiling, not a target: 64 MiB saved 1-2 MiB idle and would
// kill a busy node's daemon with an out-of-memory crash). --optimize-for-size (bench/daemon-memory.ts,
// N=4, alternated): fresh idle 59.8 MiB either way, after a pull and 20 pods 74.9 -> 74.1 MiB,
// the daemon's CPU for that work 1.34 -> 1.47 s: a tenth more CPU for under 1 MiB. A larger libuv
// threadpool (UV_THREADPOOL_SIZE=8, for CreateContainer's synced writes queued behind others):
// bench/create-ab.ts, 3 runs of N=30-60, CreateContainer median 9.5 -> 8.7, 12.3 -> 12.8,
// 14.8 -> 17.9 ms: no gain the runs can tell.
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=2', '--no-expose-wasm'];

// malloc's arena limit, from the environment (glibc reads it as the process starts; a mallopt
// once the daemon runs would leave the arenas its threads have made already). Left to glibc, each
// thread gets an arena of its own at its first allocation (up to 8 per core), and an arena stays
// with the process for good, handed on to later threads, holding whatever its threads left there:
// V8's background threads, libuv's pool and the unpack threads (image/unpack/unpack-pool.ts) kept
// 4-7 of them, and malloc_trim gives back only their free pages, never a thread arena's top.
// With one arena every thread allocates from the main one, and what a thread frees is reused by
// the others. Measured with bench/daemon-memory.ts, N=3, 100 pods, RSS median, default as A and
// MALLOC_ARENA_MAX=1 as B: fresh 57.0 -> 56.1 MiB, after a pull and 100 pods started and removed
// 76.9 -> 75.6, with 100 pods 69.9 -> 68.1, restarted with them 60.9 -> 59.2; the daemon's CPU
// for that work 3.14 -> 3.09 s. Six 100 MB pulls back to back, then 20 s idle, one run each:
// 61.9 -> 60.6 MiB. The threads now share one lock, taken only for blocks beyond their per-thread
// caches (glibc's tcache): bench/pull-ab.ts with daemons side by side, 10 rounds, medians, glibc's
// own limit (16 here) against one arena: synthetic image, the daemon's CPU per pull (all threads)
// 510 / 510 ms, wall 401 / 412 ms (two arenas: 500 ms, 413 ms). On the realistic image no
// difference showed through the benchmark's own: whichever daemon was started first spent 50-75%
// more CPU per pull, with the same setting in both too (1740 / 990 ms), almost all of it in the
// kernel (bench/pull-ab.ts).
// An operator's own MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES, wins. The
// setting is inherited by the helpers the daemon spawns (single-threaded C programs, which never
// have a second arena), not by containers: the OCI runtime gives a container's process the
// environment of its spec.
const DAEMON_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/**
 * The daemon's malloc settings this process's environment lacks: none once the operator set the
 * arena limit themselves, either way glibc reads it.
 */
export function missingDaemonEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (mallocSettingGiven(env, 'MALLOC_ARENA_MAX', 'glibc.malloc.arena_max')) return {};
  return { ...DAEMON_MALLOC_ENV };
}

/** A flag's setting: its name without a value, and without `no-` (--expose-wasm and --no-expose-wasm set the same). */
const flagName = (flag: string) => flag.split('=')[0]!.replace(/^--no-/, '--');

/**
 * The daemon's flags this process does not run with. A setting given on the command line or in
 * NODE_OPTIONS (an operator's own value, or a process already re-executed) counts as given.
 */
export function missingDaemonFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return DAEMON_NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}

/**
 * Re-execute this process with the daemon's flags and malloc settings if it lacks any, handing
 * `config` over to it (daemon/config-handoff.ts); returns only when it has them all, or when the
 * exec failed (then the daemon runs on Node's and glibc's defaults, and says so).
 */
export function reexecWithDaemonSettings(config: CribConfig): void {
  const missing = missingDaemonFlags();
  const env = missingDaemonEnv();
  if (missing.length === 0 && Object.keys(env).length === 0) return;
  let fd: number | undefined;
  try {
    fd = handOffConfig(config);
    execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, ...env, [CONFIG_FD_ENV]: String(fd) }, [fd]);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    const settings = [...missing, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ');
    process.emitWarning(`crib daemon: could not re-execute with ${settings} (${(err as Error).message}); running with Node's and glibc's defaults, which take more memory`);
  }
}
