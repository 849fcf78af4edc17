// Benchmark (not a test): ListContainerStats and ListPodSandboxStats with 200 running containers.
//   npm run bench:stats   (BENCH_PODS=100 pods of BENCH_PER_POD=2 busybox sleepers; BENCH_N=40
//                          calls of each RPC; BENCH_INTERVAL_MS=2100 between rounds)
// kubelet asks every 10 s, so every call finds the writable-layer walk cache (2 s) expired:
// rounds are spaced just past it (crib answers from the last walk and walks again behind it,
// src/stats/fs-usage.ts). Per runtime: p50/p99 of each RPC and the daemon's CPU time per
// call (steadier than wall time on a shared machine); for crib also the daemon's largest
// event-loop delay while a stats RPC was being served (read by bench/loop-delay-probe.mjs,
// loaded into the daemon with NODE_OPTIONS). containerd (Debian's package, CRI plugin, CNI
// bridge) is measured in the same run, its calls interleaved with crib's, when it is installed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withBenchTargets, type BenchTarget } from '../test-support/bench-targets.js';
import { removeCgroupParent } from '../test-support/daemon.js';

const PODS = Number(process.env.BENCH_PODS ?? 100);
const PER_POD = Number(process.env.BENCH_PER_POD ?? 2);
const N = Number(process.env.BENCH_N ?? 40);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 2100);
const START_CONCURRENCY = 8;
// Pods get a cgroup parent, as kubelet always gives them (containerd 1.6 refuses pod stats
// without one); the tree is removed at the end.
const CGROUP_PARENT = `crib-bench-stats-${process.pid}`;

const GOAL_P99_MS = 50;
// Our own bar for "never blocks the event loop": well under one scheduler tick of a busy node.
const GOAL_LOOP_DELAY_MS = 10;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  name: string;
  containerStats: number[];
  podStats: number[];
  /** Daemon event-loop delay during each call (crib only). */
  loopDelay: number[];
  /** Daemon CPU milliseconds per call. */
  containerCpu: number[];
  podCpu: number[];
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU milliseconds a process has used (utime + stime). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** Reads the probe's window in the daemon: SIGUSR2 makes it write {seq, maxMs} and reset. */
class LoopDelayProbe {
  private seq = 0;
  constructor(private readonly pid: number, readonly file: string) {}

  async window(): Promise<number> {
    process.kill(this.pid, 'SIGUSR2');
    const want = ++this.seq;
    for (let i = 0; i < 2000; i++) {
      try {
        const r = JSON.parse(await readFile(this.file, 'utf8')) as { seq: number; maxMs: number };
        if (r.seq >= want) {
          this.seq = r.seq;
          return r.maxMs;
        }
      } catch {
        /* not written yet */
      }
      await sleep(2);
    }
    throw new Error(`the daemon's loop-delay probe did not answer (${this.file})`);
  }
}

async function startContainers(t: BenchTarget): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < PODS) {
      const n = next++;
      const config = {
        metadata: { name: `stats-${n}`, namespace: 'bench', uid: `stats-${process.pid}-${n}`, attempt: 0 },
        linux: { cgroupParent: `/${CGROUP_PARENT}/${t.name.split(' ')[0]}-pod${n}` }, logDirectory: '',
      };
      const { podSandboxId } = await t.cri.runtime.RunPodSandbox({ config });
      for (let c = 0; c < PER_POD; c++) {
        const { containerId } = await t.cri.runtime.CreateContainer({
          podSandboxId, sandboxConfig: config,
          config: { metadata: { name: `c${c}`, attempt: 0 }, image: { image: t.image }, command: ['sleep', '100000'] },
        });
        await t.cri.runtime.StartContainer({ containerId });
      }
    }
  };
  await Promise.all(Array.from({ length: START_CONCURRENCY }, worker));
}

async function removeAll(t: BenchTarget): Promise<void> {
  for (const p of (await t.cri.runtime.ListPodSandbox({})).items) {
    await t.cri.runtime.StopPodSandbox({ podSandboxId: p.id });
    await t.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }
}

/** One call, timed; for crib also the loop delay over exactly that call. Checks the answer's size. */
async function timed(t: BenchTarget, probe: LoopDelayProbe | undefined, r: Result, rpc: 'ListContainerStats' | 'ListPodSandboxStats'): Promise<void> {
  if (probe) await probe.window();
  const cpu0 = cpuMs(t.daemonPid);
  const t0 = process.hrtime.bigint();
  const res = await t.cri.runtime[rpc]({});
  const elapsed = since(t0);
  (rpc === 'ListContainerStats' ? r.containerCpu : r.podCpu).push(cpuMs(t.daemonPid) - cpu0);
  if (probe) r.loopDelay.push(await probe.window());
  const want = rpc === 'ListContainerStats' ? PODS * PER_POD : PODS;
  if (res.stats.length !== want) throw new Error(`${t.name}: ${rpc} returned ${res.stats.length} entries, expected ${want}`);
  (rpc === 'ListContainerStats' ? r.containerStats : r.podStats).push(elapsed);
}

function print(results: Result[]): void {
  const line = (label: string, f: (r: Result) => string) => console.log(label.padEnd(44) + results.map((r) => f(r).padStart(24)).join(''));
  const fig = (xs: number[]) => `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.99).toFixed(1)}`;
  line('', (r) => r.name);
  line(`ListContainerStats p50 / p99 ms (goal p99 < ${GOAL_P99_MS})`, (r) => fig(r.containerStats));
  line(`ListPodSandboxStats p50 / p99 ms (goal p99 < ${GOAL_P99_MS})`, (r) => fig(r.podStats));
  const mean = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1);
  line('daemon CPU ms per call (mean, containers / pods)', (r) => `${mean(r.containerCpu)} / ${mean(r.podCpu)}`);
  line(`daemon event-loop delay max ms (goal < ${GOAL_LOOP_DELAY_MS})`, (r) => (r.loopDelay.length ? Math.max(...r.loopDelay).toFixed(1) : '-'));
  const crib = results[0]!;
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(`\ncrib: ListContainerStats p99 ${pct(crib.containerStats, 0.99).toFixed(1)} ms (goal < ${GOAL_P99_MS}: ${verdict(pct(crib.containerStats, 0.99) < GOAL_P99_MS)}), ` +
    `ListPodSandboxStats p99 ${pct(crib.podStats, 0.99).toFixed(1)} ms (goal < ${GOAL_P99_MS}: ${verdict(pct(crib.podStats, 0.99) < GOAL_P99_MS)}), ` +
    `event-loop delay max ${Math.max(...crib.loopDelay).toFixed(1)} ms (goal < ${GOAL_LOOP_DELAY_MS}: ${verdict(Math.max(...crib.loopDelay) < GOAL_LOOP_DELAY_MS)})`);
  if (results.length === 2) {
    const ctd = results[1]!;
    console.log(`crib / containerd: ListContainerStats p50 ${(pct(crib.containerStats, 0.5) / pct(ctd.containerStats, 0.5)).toFixed(2)}x ` +
      `p99 ${(pct(crib.containerStats, 0.99) / pct(ctd.containerStats, 0.99)).toFixed(2)}x, ListPodSandboxStats p50 ` +
      `${(pct(crib.podStats, 0.5) / pct(ctd.podStats, 0.5)).toFixed(2)}x p99 ${(pct(crib.podStats, 0.99) / pct(ctd.podStats, 0.99)).toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-bench-stats-'));
  const probeFile = join(dir, 'loop-delay.json');
  const probeModule = fileURLToPath(new URL('./loop-delay-probe.mjs', import.meta.url));
  try {
    const results = await withBenchTargets({ bridge: 'cribbenchstat', subnet: '10.247.0.0/16' }, async (targets) => {
      try {
        for (const t of targets) {
          console.error(`${t.name}: starting ${PODS} pods x ${PER_POD} containers`);
          await startContainers(t);
        }
        const probes = targets.map((t) => (t.name === 'crib' ? new LoopDelayProbe(t.daemonPid, probeFile) : undefined));
        const results = targets.map((t): Result => ({ name: t.name, containerStats: [], podStats: [], loopDelay: [], containerCpu: [], podCpu: [] }));
        // A first round primes what each runtime keeps between calls (CPU samples, caches).
        for (const t of targets) {
          await t.cri.runtime.ListContainerStats({});
          await t.cri.runtime.ListPodSandboxStats({});
        }
        for (let i = 0; i < N; i++) {
          await sleep(INTERVAL_MS);
          if (i % 10 === 0) console.error(`round ${i + 1}/${N}`);
          for (const [k, t] of targets.entries()) await timed(t, probes[k], results[k]!, 'ListContainerStats');
          await sleep(INTERVAL_MS);
          for (const [k, t] of targets.entries()) await timed(t, probes[k], results[k]!, 'ListPodSandboxStats');
        }
        return results;
      } finally {
        for (const t of targets) {
          await removeAll(t).catch((err: unknown) => console.error(`${t.name}: remove pods:`, err));
          for (let n = 0; n < PODS; n++) await removeCgroupParent(`${CGROUP_PARENT}/${t.name.split(' ')[0]}-pod${n}`);
        }
        await removeCgroupParent(CGROUP_PARENT);
      }
    }, { daemonEnv: { NODE_OPTIONS: `--import=${probeModule}`, CRIB_BENCH_LOOP_DELAY_FILE: probeFile } });
    console.log(`\n${PODS} pods x ${PER_POD} busybox sleepers = ${PODS * PER_POD} containers; N=${N} calls of each RPC, ` +
      `${INTERVAL_MS} ms apart (past the 2 s writable-layer cache, as kubelet's 10 s period is)\n`);
    print(results);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
