// Benchmark (not a test): ListContainerStats and ListPodSandboxStats with 200 running containers.
//   npm run bench:stats   (BENCH_PODS=100 pods of BENCH_PER_POD=2 busybox sleepers; BENCH_N=40
//                          calls of each RPC; a call every BENCH_INTERVAL_MS=2100, the two RPCs
//                          alternating, so each is listed every 4.2 s; every fourth round
//                          BENCH_CHURN=10 pods are replaced by new ones between two listings;
//                          BENCH_BASE=/path/to/another/checkout, built: A/B against its daemon;
//                          BENCH_CONTAINERD=0: crib only; BENCH_CPU_PROF=dir: each crib daemon
//                          writes a V8 CPU profile there when it stops)
// kubelet asks every 10 s, on a fixed period, so every call finds the writable-layer walk cache
// (2 s) expired: calls go out on a fixed schedule, as kubelet's do, spaced just past it (crib
// answers from the last walk and walks again behind it, src/stats/fs-usage.ts). Per runtime:
// p50/p95/p99 of each RPC, timed to its answer's last byte as kubelet's Go client would see it
// (this Node client decodes it after the clock stops, its time printed on a line of its own:
// test-support/undecoded-stats-client.ts), and the daemon's CPU time per call; for crib also the daemon's
// largest event-loop delay while each stats RPC was being served, p50/p95/max over the calls,
// and between them (the read-ahead's work: it blocks whatever other call comes then), each with
// the part of it that was the daemon's own work (its main thread's CPU time between two of the
// loop's timer checks; the rest was the machine not running the daemon)
// (read by bench/loop-delay-probe.mjs, loaded into the daemon with NODE_OPTIONS). containerd (Debian's
// package, CRI plugin, CNI bridge) is measured in the same run, after crib, on the same
// schedule, when it is installed. With BENCH_BASE, a crib daemon from that checkout (its dist/
// and native/build/) is measured too, in the same slots as this one, the order rotating every
// round, so both see the same background load. A runtime may work between calls (crib reads a
// periodic caller's cgroups just before its next call): the daemon's CPU per second over its
// whole measured phase counts that work too, and is printed beside the per-call figures. Pods
// come and go on a node: every fourth round, right after a pod listing, BENCH_CHURN of the oldest
// pods are removed and as many new ones started, and the next two listings (one of each), the
// first to meet them, are also printed on their own.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withBenchTargets, type BenchTarget } from '../test-support/bench-targets.js';
import { probeEnv } from './probe-env.js';
import { removeCgroupParent, startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { UndecodedStatsClient } from '../test-support/undecoded-stats-client.js';

const PODS = Number(process.env.BENCH_PODS ?? 100);
const PER_POD = Number(process.env.BENCH_PER_POD ?? 2);
const N = Number(process.env.BENCH_N ?? 40);
const BASE = process.env.BENCH_BASE;
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 2100);
const START_CONCURRENCY = 8;
const CHURN = Number(process.env.BENCH_CHURN ?? 10);
const CHURN_EVERY_ROUNDS = 4;
if (!Number.isInteger(CHURN) || CHURN < 0 || CHURN > PODS) throw new Error(`BENCH_CHURN must be an integer from 0 to BENCH_PODS (${PODS}), not ${process.env.BENCH_CHURN}`);
// Pods get a cgroup parent, as kubelet always gives them (containerd 1.6 refuses pod stats
// without one); the tree is removed at the end.
const CGROUP_PARENT = `crib-bench-stats-${process.pid}`;

const WITH_CONTAINERD = process.env.BENCH_CONTAINERD !== '0';
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const GOAL_P99_MS = 50;
// Our own bar for "never blocks the event loop": well under one scheduler tick of a busy node.
const GOAL_LOOP_DELAY_MS = 10;

/** A daemon's environment for the probe: its delay file, and with BENCH_CPU_PROF the file of its CPU profile. */
const daemonProbeEnv = (delayFile: string, name: string): NodeJS.ProcessEnv =>
  probeEnv({ delayFile, cpuProfile: CPU_PROF_DIR ? join(CPU_PROF_DIR, `${name}.cpuprofile`) : undefined });

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  name: string;
  /** Daemon CPU milliseconds per second over the measured rounds (calls and everything between). */
  cpuPerSecond?: number;
  containerStats: number[];
  podStats: number[];
  /** The listings right after pods were replaced (also in the two above). */
  containerStatsAfterChurn: number[];
  podStatsAfterChurn: number[];
  /** Daemon event-loop delay during each call (crib only). */
  loopDelay: number[];
  /** Of it, the longest the daemon's main thread itself ran without letting the loop check its
   * timers (the rest of a delay is the machine not running the daemon), during and between calls. */
  ownWork: number[];
  ownWorkBetween: number[];
  /** Its largest event-loop delay between two calls (the read-ahead's work, crib only), and its
   * garbage collection then, ms by kind. */
  loopDelayBetween: number[];
  gcBetween: Record<string, number>[];
  /** Each call's window by the daemon's clock (µs), for cutting a CPU profile (crib only). */
  windows: { rpc: string; fromUs: number; toUs: number; gc: Record<string, number>; delayMs: number }[];
  /** Daemon CPU milliseconds per call. */
  containerCpu: number[];
  podCpu: number[];
  /** This client's decoding of each answer, ms (not in the call's figure). */
  decodeMs: number[];
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

  /** When each window ended, by the daemon's monotonic clock (µs): BENCH_CPU_PROF's call windows. */
  lastAtUs = 0;
  /** The last window's garbage collection, ms by kind. */
  lastGc: Record<string, number> = {};
  /** The last window's longest run of the daemon's own work on its loop, ms. */
  lastOwnMs = 0;

  async window(): Promise<number> {
    process.kill(this.pid, 'SIGUSR2');
    const want = ++this.seq;
    for (let i = 0; i < 2000; i++) {
      try {
        const r = JSON.parse(await readFile(this.file, 'utf8')) as {
          seq: number; maxMs: number; ownMaxMs: number; atUs: number; gc: Record<string, number>;
        };
        if (r.seq >= want) {
          this.seq = r.seq;
          this.lastAtUs = r.atUs;
          this.lastGc = r.gc;
          this.lastOwnMs = r.ownMaxMs;
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

/** A target's pods' cgroup parents live under CGROUP_PARENT/<slug>-pod<n>. */
const slug = (k: number) => `t${k}`;

/** A target's pods, oldest first, and the number its next pod gets (its cgroup parent's name). */
interface TargetPods {
  ids: string[];
  next: number;
}

async function startPod(t: BenchTarget, k: number, pods: TargetPods): Promise<void> {
  const n = pods.next++;
  const config = {
    metadata: { name: `stats-${n}`, namespace: 'bench', uid: `stats-${process.pid}-${n}`, attempt: 0 },
    linux: { cgroupParent: `/${CGROUP_PARENT}/${slug(k)}-pod${n}` }, logDirectory: '',
  };
  const { podSandboxId } = await t.cri.runtime.RunPodSandbox({ config });
  pods.ids.push(podSandboxId);
  for (let c = 0; c < PER_POD; c++) {
    const { containerId } = await t.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: `c${c}`, attempt: 0 }, image: { image: t.image }, command: ['sleep', '100000'] },
    });
    await t.cri.runtime.StartContainer({ containerId });
  }
}

/** Starts `count` pods, START_CONCURRENCY at a time. */
async function startPods(t: BenchTarget, k: number, pods: TargetPods, count: number): Promise<void> {
  let left = count;
  await Promise.all(Array.from({ length: START_CONCURRENCY }, async () => {
    while (left > 0) {
      left--;
      await startPod(t, k, pods);
    }
  }));
}

/** Replaces the target's CHURN oldest pods by as many new ones. */
async function churn(t: BenchTarget, k: number, pods: TargetPods): Promise<void> {
  for (const id of pods.ids.splice(0, CHURN)) {
    await t.cri.runtime.StopPodSandbox({ podSandboxId: id });
    await t.cri.runtime.RemovePodSandbox({ podSandboxId: id });
  }
  await startPods(t, k, pods, CHURN);
}

async function removeAll(t: BenchTarget): Promise<void> {
  for (const p of (await t.cri.runtime.ListPodSandbox({})).items) {
    await t.cri.runtime.StopPodSandbox({ podSandboxId: p.id });
    await t.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }
}

/** One call, timed to its answer's last byte (decoded after: test-support/undecoded-stats-client.ts);
 * for crib also the loop delay over exactly that call. Checks the answer's size. */
async function timed(
  t: BenchTarget, client: UndecodedStatsClient, probe: LoopDelayProbe | undefined, r: Result, rpc: 'ListContainerStats' | 'ListPodSandboxStats',
  churn: { after: boolean; since: boolean },
): Promise<void> {
  if (probe) {
    const between = await probe.window();
    // The first window since the daemon started (start-up, the priming round) is not between
    // calls, and one with pods replaced in it is the pods' work, not the read-ahead's.
    if (r.windows.length > 0 && !churn.since) {
      r.loopDelayBetween.push(between);
      r.ownWorkBetween.push(probe.lastOwnMs);
      r.gcBetween.push(probe.lastGc);
    }
  }
  const fromUs = probe?.lastAtUs ?? 0;
  const cpu0 = cpuMs(t.daemonPid);
  const t0 = process.hrtime.bigint();
  const bytes = await client.call(rpc);
  const elapsed = since(t0);
  const d0 = process.hrtime.bigint();
  const res = client.decode(rpc, bytes);
  r.decodeMs.push(since(d0));
  (rpc === 'ListContainerStats' ? r.containerCpu : r.podCpu).push(cpuMs(t.daemonPid) - cpu0);
  if (probe) {
    const delayMs = await probe.window();
    r.loopDelay.push(delayMs);
    r.ownWork.push(probe.lastOwnMs);
    r.windows.push({ rpc, fromUs, toUs: probe.lastAtUs, gc: probe.lastGc, delayMs });
  }
  const want = rpc === 'ListContainerStats' ? PODS * PER_POD : PODS;
  if (res.stats.length !== want) throw new Error(`${t.name}: ${rpc} returned ${res.stats.length} entries, expected ${want}`);
  (rpc === 'ListContainerStats' ? r.containerStats : r.podStats).push(elapsed);
  if (churn.after) (rpc === 'ListContainerStats' ? r.containerStatsAfterChurn : r.podStatsAfterChurn).push(elapsed);
}

function print(results: Result[]): void {
  const line = (label: string, f: (r: Result) => string) => console.log(label.padEnd(44) + results.map((r) => f(r).padStart(28)).join(''));
  const fig = (xs: number[]) => `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)} / ${pct(xs, 0.99).toFixed(1)}`;
  line('', (r) => r.name);
  line(`ListContainerStats p50/p95/p99 ms (p99 < ${GOAL_P99_MS})`, (r) => fig(r.containerStats));
  line(`ListPodSandboxStats p50/p95/p99 ms (p99 < ${GOAL_P99_MS})`, (r) => fig(r.podStats));
  const churned = (xs: number[]) => (xs.length ? `${pct(xs, 0.5).toFixed(1)}/${Math.max(...xs).toFixed(1)}` : '-');
  line(`  right after ${CHURN} pods were replaced, p50/max`, (r) => `${churned(r.containerStatsAfterChurn)}, ${churned(r.podStatsAfterChurn)}`);
  console.log('    (ListContainerStats, then ListPodSandboxStats)');
  line('this client decoding an answer, p50/p95/p99 ms', (r) => fig(r.decodeMs));
  const mean = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1);
  line('daemon CPU ms per call (mean, containers / pods)', (r) => `${mean(r.containerCpu)} / ${mean(r.podCpu)}`);
  line('daemon CPU ms per second over the run', (r) => (r.cpuPerSecond === undefined ? '-' : r.cpuPerSecond.toFixed(1)));
  /** Mean scavenge / full GC ms over windows (crib only: '-' without a probe). */
  const gcFig = (gcs: Record<string, number>[]) => (gcs.length
    ? `${mean(gcs.map((g) => g.minor ?? 0))} / ${mean(gcs.map((g) => g.major ?? 0))}` : '-');
  /** p50 / p95 / max of loop delays (crib only). */
  const delayFig = (xs: number[]) => (xs.length
    ? `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)} / ${Math.max(...xs).toFixed(1)}` : '-');
  line('daemon GC ms per call (mean, scavenges / full)', (r) => gcFig(r.windows.map((w) => w.gc)));
  line(`daemon event-loop delay p50/p95/max ms (goal < ${GOAL_LOOP_DELAY_MS})`, (r) => delayFig(r.loopDelay));
  line('  of it the daemon\'s own work, p50/p95/max ms', (r) => delayFig(r.ownWork));
  line('daemon event-loop delay between calls (read-ahead)', (r) => delayFig(r.loopDelayBetween));
  line('  of it the daemon\'s own work, p50/p95/max ms', (r) => delayFig(r.ownWorkBetween));
  line('daemon GC ms between calls (mean, scavenges / full)', (r) => gcFig(r.gcBetween));
  const crib = results.find((r) => r.name === 'crib')!;
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(`\ncrib: ListContainerStats p99 ${pct(crib.containerStats, 0.99).toFixed(1)} ms (goal < ${GOAL_P99_MS}: ${verdict(pct(crib.containerStats, 0.99) < GOAL_P99_MS)}), ` +
    `ListPodSandboxStats p99 ${pct(crib.podStats, 0.99).toFixed(1)} ms (goal < ${GOAL_P99_MS}: ${verdict(pct(crib.podStats, 0.99) < GOAL_P99_MS)}), ` +
    `event-loop delay max ${Math.max(...crib.loopDelay).toFixed(1)} ms (goal < ${GOAL_LOOP_DELAY_MS}: ${verdict(Math.max(...crib.loopDelay) < GOAL_LOOP_DELAY_MS)})`);
  const ctd = results.find((r) => r.name.startsWith('containerd'));
  if (ctd) {
    console.log(`crib / containerd: ListContainerStats p50 ${(pct(crib.containerStats, 0.5) / pct(ctd.containerStats, 0.5)).toFixed(2)}x ` +
      `p99 ${(pct(crib.containerStats, 0.99) / pct(ctd.containerStats, 0.99)).toFixed(2)}x, ListPodSandboxStats p50 ` +
      `${(pct(crib.podStats, 0.5) / pct(ctd.podStats, 0.5)).toFixed(2)}x p99 ${(pct(crib.podStats, 0.99) / pct(ctd.podStats, 0.99)).toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-bench-stats-'));
  const probeFile = join(dir, 'loop-delay.json');
  try {
    const results = await withBenchTargets({ bridge: 'cribbenchstat', subnet: '10.247.0.0/16' }, async (targets) => {
      let base: TestDaemon | undefined;
      /** Each target's client for the timed listings, by the target's index. */
      const clients: UndecodedStatsClient[] = [];
      /** Each target's pods, by the target's index. */
      const pods: TargetPods[] = [];
      try {
        if (BASE) {
          // The other checkout's own daemon launcher runs its own dist/cli.js.
          const { startDaemon: startBase } = (await import(join(BASE, 'test-support/daemon.ts'))) as { startDaemon: typeof startDaemon };
          base = await startBase({ logLevel: 'warn', env: daemonProbeEnv(`${probeFile}.base`, 'base') });
          const crib = targets[0]!;
          await base.cri.image.PullImage({ image: { image: crib.image } });
          targets.splice(1, 0, { ...crib, name: 'crib (BENCH_BASE)', cri: base.cri, socket: base.socket, daemonPid: base.proc.pid! });
        }
        for (const [k, t] of targets.entries()) {
          console.error(`${t.name}: starting ${PODS} pods x ${PER_POD} containers`);
          pods[k] = { ids: [], next: 0 };
          await startPods(t, k, pods[k]!, PODS);
        }
        clients.push(...targets.map((t) => new UndecodedStatsClient(t.socket)));
        const probes = targets.map((t) => (t.name === 'crib' ? new LoopDelayProbe(t.daemonPid, probeFile)
          : t.name.startsWith('crib') ? new LoopDelayProbe(t.daemonPid, `${probeFile}.base`) : undefined));
        const results = targets.map((t): Result => ({ name: t.name, containerStats: [], podStats: [], containerStatsAfterChurn: [], podStatsAfterChurn: [], loopDelay: [], ownWork: [], loopDelayBetween: [], ownWorkBetween: [], gcBetween: [], windows: [], containerCpu: [], podCpu: [], decodeMs: [] }));
        // A first round primes what each runtime keeps between calls (CPU samples, caches).
        for (const t of targets) {
          await t.cri.runtime.ListContainerStats({});
          await t.cri.runtime.ListPodSandboxStats({});
        }
        // kubelet lists on a fixed period, whatever each call takes: calls go out on a fixed
        // schedule, one slot every INTERVAL_MS, container and pod listings alternating. The crib
        // daemons share the slots (order rotating every round, so both see the same load);
        // containerd, whose calls can outlast a slot, gets the same schedule after them.
        const phases = [targets.flatMap((t, k) => (t.name.startsWith('crib') ? [k] : [])),
          targets.flatMap((t, k) => (t.name.startsWith('crib') ? [] : [k]))];
        for (const phase of phases) {
          if (phase.length === 0) continue;
          const cpu0 = phase.map((k) => cpuMs(targets[k]!.daemonPid));
          const t0 = performance.now();
          for (let slot = 0; slot < 2 * N; slot++) {
            // Right after a pod listing (slots alternate containers, pods), in the wait for the next.
            const churnSlot = CHURN > 0 && slot > 0 && slot % (2 * CHURN_EVERY_ROUNDS) === 0;
            if (churnSlot) for (const k of phase) await churn(targets[k]!, k, pods[k]!);
            const afterChurn = CHURN > 0 && slot > 1 && slot % (2 * CHURN_EVERY_ROUNDS) <= 1;
            const wait = t0 + (slot + 1) * INTERVAL_MS - performance.now();
            if (wait > 0) await sleep(wait);
            const round = Math.floor(slot / 2);
            if (slot % 20 === 0) console.error(`${phase.map((k) => targets[k]!.name).join(', ')}: round ${round + 1}/${N}`);
            const order = phase.map((_, j) => phase[(j + round) % phase.length]!);
            for (const k of order) {
              await timed(targets[k]!, clients[k]!, probes[k], results[k]!, slot % 2 ? 'ListPodSandboxStats' : 'ListContainerStats', { after: afterChurn, since: churnSlot });
            }
          }
          const seconds = (performance.now() - t0) / 1000;
          for (const [j, k] of phase.entries()) results[k]!.cpuPerSecond = (cpuMs(targets[k]!.daemonPid) - cpu0[j]!) / seconds;
        }
        return results;
      } finally {
        for (const client of clients) client.close();
        for (const [k, t] of targets.entries()) {
          await removeAll(t).catch((err: unknown) => console.error(`${t.name}: remove pods:`, err));
          for (let n = 0; n < (pods[k]?.next ?? 0); n++) await removeCgroupParent(`${CGROUP_PARENT}/${slug(k)}-pod${n}`);
        }
        await base?.cleanup().catch((err: unknown) => console.error('BENCH_BASE daemon cleanup:', err));
        await removeCgroupParent(CGROUP_PARENT);
      }
    }, { daemonEnv: daemonProbeEnv(probeFile, 'crib'), withoutContainerd: !WITH_CONTAINERD });
    console.log(`\n${PODS} pods x ${PER_POD} busybox sleepers = ${PODS * PER_POD} containers; N=${N} calls of each RPC, ` +
      `on a fixed schedule: a call every ${INTERVAL_MS} ms, the two RPCs alternating, so each every ${2 * INTERVAL_MS} ms ` +
      `(past the 2 s writable-layer cache, as kubelet's 10 s period is)\n`);
    print(results);
    if (CPU_PROF_DIR) {
      // bench/profile-windows.ts reads the profiles with these.
      for (const r of results) if (r.windows.length) await writeFile(join(CPU_PROF_DIR, `${r.name.startsWith('crib (') ? 'base' : 'crib'}.windows.json`), JSON.stringify(r.windows));
    }
    const base = results.find((r) => r.name !== 'crib' && r.name.startsWith('crib'));
    if (base) {
      const crib = results.find((r) => r.name === 'crib')!;
      const ratio = (a: number[], b: number[], p: number) => (pct(a, p) / pct(b, p)).toFixed(2);
      console.log(`crib (this checkout) / ${base.name}: ListContainerStats p50 ${ratio(crib.containerStats, base.containerStats, 0.5)}x ` +
        `p95 ${ratio(crib.containerStats, base.containerStats, 0.95)}x, ListPodSandboxStats p50 ${ratio(crib.podStats, base.podStats, 0.5)}x ` +
        `p95 ${ratio(crib.podStats, base.podStats, 0.95)}x`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
