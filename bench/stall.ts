// Benchmark (not a test): how long other calls wait while a container goes, with data on the
// disk not yet written back (issue 14: no RPC waits behind another).
//   npm run bench:stall   (BENCH_N=5 rounds per runtime; BENCH_DIRTY_MB=256; BENCH_FILES=0;
//                          BENCH_CONTAINERD=0: crib only)
// The last unmount of a container's writable rootfs syncs the whole filesystem its upper dir is
// on (overlayfs), everything any process has left dirty there, so it lasts as long as the disk
// needs. A round, per runtime, the runtimes taking turns: a pod and a busybox container started;
// BENCH_DIRTY_MB written, not synced, to a file in the system's temporary directory (on this
// project's machines the same filesystem as both runtimes' roots); then StopContainer and
// RemoveContainer, while a second client calls ListPodSandbox back to back, from the stop until
// a second after the removal answered (crib deletes a removed container's remains after
// answering, containerd's shim unmounts at the stop). Printed per runtime: those calls'
// median, p99 and slowest, and the stop and the removal's median time.
// BENCH_FILES=n: the container first writes n empty files into its rootfs (its writable layer,
// which the removal deletes after answering).
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criClient } from '../test-support/cri-client.js';
import { withBenchTargets, type BenchTarget } from '../test-support/bench-targets.js';

const N = Number(process.env.BENCH_N ?? 5);
const DIRTY_MB = Number(process.env.BENCH_DIRTY_MB ?? 256);
const FILES = Number(process.env.BENCH_FILES ?? 0);
/** How long the probe goes on after the removal answered. */
const AFTER_MS = 1000;
const DIRTY_FILE = join(tmpdir(), `crib-bench-stall-${process.pid}`);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface Figures { probes: number[]; stops: number[]; removals: number[] }

/** ListPodSandbox back to back on its own connection until `until` resolves; each call's ms. */
async function probe(socket: string, until: Promise<unknown>): Promise<number[]> {
  const cri = criClient(socket);
  const times: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  try {
    await cri.runtime.ListPodSandbox({});
    while (!done) {
      const t0 = process.hrtime.bigint();
      await cri.runtime.ListPodSandbox({});
      times.push(since(t0));
    }
  } finally {
    cri.close();
  }
  return times;
}

async function round(t: BenchTarget, n: number, out: Figures): Promise<void> {
  const { cri } = t;
  const config = { metadata: { name: `stall-${n}`, namespace: 'bench', uid: `stall-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  try {
    const { containerId } = await cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image: t.image }, command: ['sleep', '100000'] },
    });
    await cri.runtime.StartContainer({ containerId });
    if (FILES > 0) {
      const script = `mkdir /many && cd /many && i=0 && while [ $i -lt ${FILES} ]; do : > f$i; i=$((i+1)); done`;
      const r = await cri.runtime.ExecSync({ containerId, cmd: ['sh', '-c', script], timeout: '300' });
      if (r.exitCode !== 0) throw new Error(`writing ${FILES} files in the container failed: ${String(r.stderr)}`);
    }
    writeFileSync(DIRTY_FILE, Buffer.alloc(DIRTY_MB << 20, n + 1));
    let finished!: () => void;
    const removed = new Promise<void>((resolve) => (finished = resolve));
    const probing = probe(t.socket, removed);
    try {
      let t0 = process.hrtime.bigint();
      // timeout 0: SIGKILL at once in both runtimes (sleep as pid 1 ignores SIGTERM).
      await cri.runtime.StopContainer({ containerId, timeout: 0 });
      out.stops.push(since(t0));
      t0 = process.hrtime.bigint();
      await cri.runtime.RemoveContainer({ containerId });
      out.removals.push(since(t0));
      await new Promise((r) => setTimeout(r, AFTER_MS));
    } finally {
      finished();
      out.probes.push(...(await probing));
    }
  } finally {
    rmSync(DIRTY_FILE, { force: true });
    await cri.runtime.StopPodSandbox({ podSandboxId });
    await cri.runtime.RemovePodSandbox({ podSandboxId });
  }
}

async function main(): Promise<void> {
  const results = await withBenchTargets({ bridge: 'cribbenchstall', subnet: '10.247.0.0/16' }, async (targets) => {
    const figures = targets.map((): Figures => ({ probes: [], stops: [], removals: [] }));
    for (let i = 0; i < N; i++) {
      console.error(`round ${i + 1}/${N}`);
      for (const [k, t] of targets.entries()) await round(t, i, figures[k]!);
    }
    return targets.map((t, k) => ({ name: t.name, ...figures[k]! }));
  }, { withoutContainerd: process.env.BENCH_CONTAINERD === '0' });
  console.log(`\nN=${N} rounds per runtime, alternating; ${DIRTY_MB} MiB written and not synced (${tmpdir()}, device ${statSync(tmpdir()).dev}) before each container's stop and removal` +
    (FILES > 0 ? `; ${FILES} files in its writable layer` : ''));
  console.log('ListPodSandbox calls back to back meanwhile, and the stop and removal themselves (ms):\n');
  console.log(`${'runtime'.padEnd(24)}${'calls'.padStart(7)}${'median'.padStart(9)}${'p99'.padStart(9)}${'slowest'.padStart(9)}${'stop'.padStart(9)}${'remove'.padStart(9)}`);
  for (const r of results) {
    const f = (x: number) => x.toFixed(2).padStart(9);
    console.log(`${r.name.padEnd(24)}${String(r.probes.length).padStart(7)}${f(pct(r.probes, 0.5))}${f(pct(r.probes, 0.99))}${f(Math.max(...r.probes))}${f(pct(r.stops, 0.5))}${f(pct(r.removals, 0.5))}`);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  rmSync(DIRTY_FILE, { force: true });
  process.exit(1);
});
