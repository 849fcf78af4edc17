// The runtimes a pod-level benchmark compares, set up the same way for every benchmark: a
// loopback registry with busybox, crib, and Debian's containerd (CRI plugin, runc, CNI bridge)
// when it is installed. Targets are measured in one run, in turn or side by side, and everything
// is removed afterwards.
import { readFileSync } from 'node:fs';
import type { CriClient } from './cri-client.js';
import { containerdAvailable, startContainerdForPods } from './containerd.js';
import { startDaemon } from './daemon.js';
import { pushBusybox } from './image-builder.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { v8WorkersToBatch } from '../src/sys/libc.js';

export interface BenchTarget {
  name: string;
  cri: CriClient;
  /** The CRI socket's path (for a benchmark's own clients beside `cri`). */
  socket: string;
  /** The busybox image, already pulled. */
  image: string;
  daemonPid: number;
  /** The daemon's RSS (MiB) once started and idle for a few seconds, before any call but Version. */
  freshRssMiB: number;
  /** Command-line word and marker identifying this target's per-container helper processes. */
  helper: { name: string; marker: string };
  /** The loopback registry every target pulls from (a benchmark may push more images to it). */
  registry: TestRegistry;
}

/** A benchmark's pod and the container started in it. */
export interface SleeperPod { podSandboxId: string; containerId: string }

/**
 * Runs a pod (`name` and `uid` its metadata, `linux` its Linux config) and starts a busybox
 * `sleep` in it from `image`: the pod most benchmarks keep running while they measure.
 */
export async function runSleeperPod(cri: CriClient, image: string, pod: { name: string; uid: string; linux?: object }): Promise<SleeperPod> {
  const config = { metadata: { name: pod.name, namespace: 'bench', uid: pod.uid, attempt: 0 }, linux: pod.linux ?? {}, logDirectory: '' };
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  const { containerId } = await cri.runtime.CreateContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
  });
  await cri.runtime.StartContainer({ containerId });
  return { podSandboxId, containerId };
}

type Cleanup = () => Promise<unknown>;

/**
 * Switches this process's own V8 worker threads to SCHED_BATCH, as the crib daemon does with
 * its own (sys/libc.ts v8WorkersToBatch). The benchmark's client is a Node process whose
 * collections and compiles run on those threads, and woken on a CPU they preempted the client's
 * own main thread, or the runtime being measured, whichever runtime it was: 161 times in one run
 * of bench:ops, 18 once switched (a scheduler trace of the whole machine). That is the
 * instrument's noise, not a runtime's cost. The threads keep their share of the CPU. Once per
 * process; a failure only warns.
 */
export function quietClientThreads(): void {
  try {
    v8WorkersToBatch();
  } catch (err) {
    console.error(`the benchmark client's V8 threads keep the normal policy: ${(err as Error).message}`);
  }
}

/** How long a fresh daemon is left alone before its idle RSS is read: start-up's garbage collected. */
const SETTLE_MS = 3000;

/** VmRSS of a process, MiB. */
function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

async function freshRss(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return rssMiB(pid);
}

export interface BenchTargetOptions {
  /** Extra environment for the crib daemon (e.g. NODE_OPTIONS loading a measuring probe). */
  daemonEnv?: NodeJS.ProcessEnv;
  /** Leave containerd out even when it is installed (a crib-only A/B run). */
  withoutContainerd?: boolean;
}

/** Measures each target in turn: containerd starts only after crib's figures are taken. */
export async function runOnBenchTargets<R>(
  containerdNet: { bridge: string; subnet: string },
  measure: (t: BenchTarget) => Promise<R>,
  opts: BenchTargetOptions = {},
): Promise<R[]> {
  const cleanups: Cleanup[] = [];
  const results: R[] = [];
  try {
    await startEachTarget(containerdNet, cleanups, async (t) => {
      results.push(await measure(t));
    }, opts);
    return results;
  } finally {
    await runCleanups(cleanups);
  }
}

/**
 * Starts every target, then hands them over together, so a benchmark can alternate between
 * them: on a noisy machine, measurements taken side by side in time compare far better than
 * ones taken minutes apart.
 */
export async function withBenchTargets<R>(
  containerdNet: { bridge: string; subnet: string },
  fn: (targets: BenchTarget[]) => Promise<R>,
  opts: BenchTargetOptions = {},
): Promise<R> {
  const cleanups: Cleanup[] = [];
  const targets: BenchTarget[] = [];
  try {
    await startEachTarget(containerdNet, cleanups, async (t) => {
      targets.push(t);
    }, opts);
    return await fn(targets);
  } finally {
    await runCleanups(cleanups);
  }
}

/** Starts the registry, then crib, then containerd, calling onTarget as each is ready. */
async function startEachTarget(
  containerdNet: { bridge: string; subnet: string },
  cleanups: Cleanup[],
  onTarget: (t: BenchTarget) => Promise<void>,
  opts: BenchTargetOptions,
): Promise<void> {
  quietClientThreads();
  const registry = await startRegistry();
  cleanups.push(() => registry.stop());
  await pushBusybox(registry, 'library/busybox', 'latest');
  const image = `${registry.host}/library/busybox:latest`;

  // A shared, loaded machine can take longer than a test's 20 s to start a daemon.
  // At the default log level (info), as a node runs it: the memory figures are an operator's.
  const d = await startDaemon({ logLevel: 'info', env: opts.daemonEnv, startTimeoutMs: 90_000 });
  cleanups.unshift(() => d.cleanup());
  const cribFresh = await freshRss(d.proc.pid!);
  await d.cri.image.PullImage({ image: { image } });
  await onTarget({ name: 'crib', cri: d.cri, socket: d.socket, image, daemonPid: d.proc.pid!, freshRssMiB: cribFresh, helper: { name: 'crib-monitor', marker: d.dir }, registry });

  if (opts.withoutContainerd) return;
  if (containerdAvailable()) {
    const ctd = await startContainerdForPods(registry, { ...containerdNet, images: [image] });
    cleanups.unshift(() => ctd.stop());
    // containerd pulled its image while starting: its figure is idle, but not before any pull.
    const ctdFresh = await freshRss(ctd.proc.pid!);
    await onTarget({
      name: 'containerd 1.6 + runc', cri: ctd.cri, socket: ctd.socket, image, daemonPid: ctd.proc.pid!, freshRssMiB: ctdFresh,
      helper: { name: 'containerd-shim', marker: ctd.socket.replace(/\/containerd.sock$/, '') },
      registry,
    });
  } else {
    console.log('(containerd is not installed: apt-get install containerd containernetworking-plugins to compare)');
  }
}

async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const c of cleanups) await c().catch((err: unknown) => console.error('cleanup:', err));
}
