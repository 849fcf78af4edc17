// Benchmark (not a test): kubelet's steady pattern against a node with 0, 50, 110 and 250 pods.
//   npm run bench:kubelet -- [--seconds 90] [--levels 0,50,110,250]
// Each pod has one busybox sleeper and a cgroup parent (as kubelet gives every pod). At each
// level, per runtime in turn, for --seconds: a relist every second (ListPodSandbox, then
// ListContainers: kubelet's PLEG), stats every 10 s (ListPodSandboxStats, ListContainerStats),
// and an ExecSync probe of every pod every 10 s, each at its own phase of the period as kubelet's
// probe workers are (random, the same for both runtimes: probePhases). Calls are fired on
// schedule without waiting for earlier ones (kubelet's goroutines do not wait either), so a slow
// call shows as latency, not as fewer calls. The stats listings' answers are received but not
// decoded (kubelet decodes them on other threads than its relist's; here, one thread decoding
// them held the relists' answers back).
// Measured per runtime and level: CPU seconds per minute of the runtime's processes (the
// daemon, its per-container helpers and what they reap: crib-monitor / containerd-shim, and
// containerd's pause processes), their PSS (smaps_rollup), and p50/p99 per RPC. Then the scale
// curve: pod + container start latency, p50 and p90 (BENCH_CURVE_SAMPLES pods, default 20,
// started one by one with the level's pods running) and the daemon's RSS at each level once its
// pattern has run.
// containerd (Debian's package, CRI plugin, runc, CNI bridge; test-support/bench-targets.ts)
// runs in the same run when installed, measured right after crib at every level.
// The first stats listing at a level is also printed on its own: it comes before any period is
// known, so it reads everything while its caller waits, and with a few listings per level it
// alone makes the p99. BENCH_CPU_PROF=dir: crib's daemon writes a CPU profile there
// (crib.cpuprofile) and the stats listings' windows beside it (crib.windows.json; the two
// listings of a tick overlap), for bench/profile-windows.ts. BENCH_CONTAINERD=0: crib only.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runSleeperPod, withBenchTargets, type BenchTarget, type SleeperPod } from '../test-support/bench-targets.js';
import { removeCgroupParent } from '../test-support/daemon.js';
import { UndecodedStatsClient, type StatsListing } from '../test-support/undecoded-stats-client.js';
import { probeEnv } from './probe-env.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

const SECONDS = Number(arg('seconds', process.env.BENCH_SECONDS ?? '90'));
const LEVELS = arg('levels', process.env.BENCH_LEVELS ?? '0,50,110,250').split(',').map(Number).sort((a, b) => a - b);
/** Pods started one by one at each level for the scale curve (then removed): 20, for a median
 * and a 90th percentile that a single slow start does not move (a start is ~0.1 s for crib and
 * ~0.5 s for containerd: a level's 20 cost seconds beside its 90 s of kubelet's pattern). */
const CURVE_SAMPLES = Number(process.env.BENCH_CURVE_SAMPLES ?? 20);
const START_CONCURRENCY = 8;
const RELIST_MS = 1000;
const STATS_MS = 10_000;
const PROBE_MS = 10_000;
const CGROUP_PARENT = `crib-bench-kubelet-${process.pid}`;
const RPCS = ['ListPodSandbox', 'ListContainers', 'ListPodSandboxStats', 'ListContainerStats', 'ExecSync'] as const;
type Rpc = (typeof RPCS)[number];
const STATS_RPCS: readonly Rpc[] = ['ListPodSandboxStats', 'ListContainerStats'];
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
/** crib's stats listings, by the profile's clock (µs), with BENCH_CPU_PROF. */
const windows: { rpc: string; fromUs: number; toUs: number }[] = [];

if (!Number.isFinite(SECONDS) || SECONDS <= 0) throw new Error(`--seconds must be a positive number, not ${arg('seconds', '')}`);
if (LEVELS.some((l) => !Number.isInteger(l) || l < 0)) throw new Error(`--levels must be pod counts (0,50,...), not ${LEVELS.join(',')}`);

const pct = (xs: number[], p: number) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// ---- the runtime's processes -------------------------------------------------------------------

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // gone
  }
}

/** ppid, comm and CPU ms (utime + stime + the reaped children's cutime + cstime) of a process. */
function procStat(pid: number): { ppid: number; comm: string; cpuMs: number } | undefined {
  const s = readProc(pid, 'stat');
  if (!s) return undefined;
  const close = s.lastIndexOf(')');
  const f = s.slice(close + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { ppid: Number(f[1]), comm: s.slice(s.indexOf('(') + 1, close), cpuMs: (ticks * 1000) / CLOCK_TICKS };
}

/**
 * The daemon, its helpers (command line naming the helper and the target's marker) and the
 * pause processes those helpers run (containerd's per-pod overhead; crib has none).
 */
function runtimeProcesses(t: BenchTarget): number[] {
  const all = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
  const helpers = new Set<number>();
  for (const pid of all) {
    if (pid === t.daemonPid) continue;
    const cmd = readProc(pid, 'cmdline');
    if (cmd?.includes(t.helper.name) && cmd.includes(t.helper.marker)) helpers.add(pid);
  }
  const pause = all.filter((pid) => {
    const st = helpers.has(pid) ? undefined : procStat(pid);
    return st !== undefined && helpers.has(st.ppid) && st.comm === 'pause';
  });
  return [t.daemonPid, ...helpers, ...pause];
}

function cpuSnapshot(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const st = procStat(pid);
    if (st) out.set(pid, st.cpuMs);
  }
  return out;
}

/** CPU ms used between two snapshots (a process new since the first counts from zero). */
function cpuUsed(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, v] of after) ms += v - (before.get(pid) ?? 0);
  return ms;
}

function kbField(text: string | undefined, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text ?? '')?.[1] ?? 0);
}

const pssMiB = (pids: number[]) => pids.reduce((kb, pid) => kb + kbField(readProc(pid, 'smaps_rollup'), 'Pss'), 0) / 1024;
const rssMiB = (pid: number) => kbField(readProc(pid, 'status'), 'VmRSS') / 1024;

// ---- pods ----------------------------------------------------------------------------------------

type Pod = SleeperPod;

let seq = 0;
async function startPod(t: BenchTarget): Promise<Pod> {
  const n = seq++;
  const runtime = t.name.split(' ')[0];
  return runSleeperPod(t.cri, t.image, { name: `kubelet-${n}`, uid: `kubelet-${process.pid}-${n}`, linux: { cgroupParent: `/${CGROUP_PARENT}/${runtime}-pod${n}` } });
}

async function removePod(t: BenchTarget, p: Pod): Promise<void> {
  await t.cri.runtime.StopPodSandbox({ podSandboxId: p.podSandboxId });
  await t.cri.runtime.RemovePodSandbox({ podSandboxId: p.podSandboxId });
}

async function growTo(t: BenchTarget, pods: Pod[], count: number): Promise<void> {
  let starting = pods.length;
  const worker = async () => {
    while (starting < count) {
      starting++;
      pods.push(await startPod(t));
    }
  };
  await Promise.all(Array.from({ length: START_CONCURRENCY }, worker));
}

/** Pod + container start (RunPodSandbox, CreateContainer, StartContainer) with the level's pods running. */
async function startLatency(t: BenchTarget): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < CURVE_SAMPLES; i++) {
    const t0 = performance.now();
    const p = await startPod(t);
    out.push(performance.now() - t0);
    await removePod(t, p);
  }
  return out;
}

// ---- kubelet's steady pattern --------------------------------------------------------------------

interface Window {
  latency: Record<Rpc, number[]>;
  /** The first call of each RPC at this level (the stats listings' cold one). */
  first: Partial<Record<Rpc, number>>;
  errors: Record<Rpc, number>;
  firstError?: string;
  cpuSecondsPerMinute: number;
  pssMiB: number;
}

/**
 * When in its period each pod's probe fires (ms), as kubelet's probe workers have it: each starts
 * with its pod, not in step with the relist's ticker. Random, from a seed fixed per pod count, so
 * both runtimes get the same schedule. (Spread evenly, i * period / count, one probe fell on every
 * relist's tick whenever the count was a multiple of ten: an exec fired with every relist, which
 * no node sees.)
 */
function probePhases(count: number): number[] {
  // mulberry32: a small seeded generator, enough to scatter phases.
  let seed = 0x6b75_6265 ^ count;
  const next = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  return Array.from({ length: count }, () => next() * PROBE_MS);
}

async function steady(t: BenchTarget, pods: Pod[]): Promise<Window> {
  const latency = Object.fromEntries(RPCS.map((r) => [r, [] as number[]])) as Record<Rpc, number[]>;
  const errors = Object.fromEntries(RPCS.map((r) => [r, 0])) as Record<Rpc, number>;
  let firstError: string | undefined;
  const first: Partial<Record<Rpc, number>> = {};
  const fired = new Set<Rpc>();
  const inflight = new Set<Promise<void>>();
  const timed = async (rpc: Rpc, call: () => Promise<unknown>): Promise<void> => {
    const isFirst = !fired.has(rpc);
    fired.add(rpc);
    const t0 = performance.now();
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    try {
      await call();
      const ms = performance.now() - t0;
      latency[rpc].push(ms);
      if (isFirst) first[rpc] = ms;
      if (CPU_PROF_DIR && t.name === 'crib' && STATS_RPCS.includes(rpc)) {
        windows.push({ rpc, fromUs, toUs: Number(process.hrtime.bigint() / 1000n) });
      }
    } catch (err) {
      errors[rpc]++;
      firstError ??= `${rpc}: ${(err as Error).message}`;
    }
  };
  const fire = (work: () => Promise<void>) => {
    const p = work();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const { runtime } = t.cri;
  // The stats listings' answers are left undecoded (test-support/undecoded-stats-client.ts): the
  // relists' answers, already there, would wait behind their decoding and count against the runtime.
  const statsClient = new UndecodedStatsClient(t.socket);
  const undecoded = (method: StatsListing) => () => statsClient.call(method);
  const events: { at: number; run: () => Promise<void> }[] = [];
  const span = SECONDS * 1000;
  for (let at = 0; at < span; at += RELIST_MS) {
    events.push({ at, run: async () => {
      await timed('ListPodSandbox', () => runtime.ListPodSandbox({}));
      await timed('ListContainers', () => runtime.ListContainers({}));
    } });
  }
  for (let at = STATS_MS / 2; at < span; at += STATS_MS) {
    events.push({ at, run: () => timed('ListPodSandboxStats', undecoded('ListPodSandboxStats')) });
    events.push({ at, run: () => timed('ListContainerStats', undecoded('ListContainerStats')) });
  }
  const phase = probePhases(pods.length);
  pods.forEach((p, i) => {
    for (let at = phase[i]!; at < span; at += PROBE_MS) {
      events.push({ at, run: () => timed('ExecSync', () => runtime.ExecSync({ containerId: p.containerId, cmd: ['/bin/sh', '-c', 'exit 0'], timeout: '10' })) });
    }
  });
  events.sort((a, b) => a.at - b.at);

  // One relist before the window, unrecorded: kubelet relists every second without end, so the
  // window's first relist is not a first one. And the client's protobuf decoders for a listing's
  // items are generated on the first answer that has any: without this, the runtime measured
  // first at the first level with pods paid for them (crib, whose relist p99 at 50 pods was that
  // one call; its daemon's CPU profile showed it idle throughout).
  await runtime.ListPodSandbox({});
  await runtime.ListContainers({});
  const procs0 = runtimeProcesses(t);
  const cpu0 = cpuSnapshot(procs0);
  const start = performance.now();
  for (const ev of events) {
    await sleep(start + ev.at - performance.now());
    fire(ev.run);
  }
  await sleep(start + span - performance.now());
  await Promise.all([...inflight]);
  statsClient.close();
  const wallMs = performance.now() - start;
  const procs1 = runtimeProcesses(t);
  const used = cpuUsed(cpu0, cpuSnapshot(procs1));
  return { latency, first, errors, firstError, cpuSecondsPerMinute: (used / 1000) / (wallMs / 60_000), pssMiB: pssMiB(procs1) };
}

// ---- report --------------------------------------------------------------------------------------

interface LevelResult { level: number; window: Window; startMs: number[]; daemonRssMiB: number }

function print(names: string[], results: LevelResult[][]): void {
  const col = (s: string) => s.padStart(26);
  const header = (title: string) => console.log(`\n${title.padEnd(40)}${names.map(col).join('')}${names.length === 2 ? col('crib / containerd') : ''}`);
  const row = (label: string, vals: number[], fmt: (v: number) => string, ratio = true) => {
    const cells = vals.map((v) => col(fmt(v)));
    if (vals.length === 2 && ratio) cells.push(col(`${(vals[0]! / vals[1]!).toFixed(2)}x`));
    console.log(label.padEnd(40) + cells.join(''));
  };
  for (const [li, level] of LEVELS.entries()) {
    const at = results.map((r) => r[li]!);
    header(`${level} pods, ${SECONDS} s of kubelet's pattern`);
    row('CPU s per minute (daemon+helpers)', at.map((r) => r.window.cpuSecondsPerMinute), (v) => v.toFixed(2));
    row('PSS MiB (daemon+helpers)', at.map((r) => r.window.pssMiB), (v) => v.toFixed(1));
    for (const rpc of RPCS) {
      const xs = at.map((r) => r.window.latency[rpc]);
      if (xs.every((x) => x.length === 0)) continue;
      const cells = xs.map((x) => col(`${pct(x, 0.5).toFixed(1)} / ${pct(x, 0.99).toFixed(1)}`));
      if (xs.length === 2) cells.push(col(`${(pct(xs[0]!, 0.5) / pct(xs[1]!, 0.5)).toFixed(2)}x / ${(pct(xs[0]!, 0.99) / pct(xs[1]!, 0.99)).toFixed(2)}x`));
      console.log(`${rpc} p50 / p99 ms (n=${xs.map((x) => x.length).join('/')})`.padEnd(40) + cells.join(''));
      if (STATS_RPCS.includes(rpc)) row(`  its first call ms (cold)`, at.map((r) => r.window.first[rpc] ?? NaN), (v) => v.toFixed(1));
    }
    for (const [k, r] of at.entries()) {
      const failed = RPCS.filter((rpc) => r.window.errors[rpc] > 0).map((rpc) => `${rpc} ${r.window.errors[rpc]}`);
      if (failed.length) console.log(`  ${names[k]}: failed calls: ${failed.join(', ')} (first: ${r.window.firstError})`);
    }
  }
  header(`scale curve (${CURVE_SAMPLES} pods started one by one at each level)`);
  for (const [li, level] of LEVELS.entries()) {
    const at = results.map((r) => r[li]!);
    row(`${level} pods: pod+container start p50 ms`, at.map((r) => pct(r.startMs, 0.5)), (v) => v.toFixed(1));
    row(`${level} pods: pod+container start p90 ms`, at.map((r) => pct(r.startMs, 0.9)), (v) => v.toFixed(1));
    row(`${level} pods: daemon RSS MiB (after the pattern)`, at.map((r) => r.daemonRssMiB), (v) => v.toFixed(1));
  }
  if (LEVELS.length >= 2) {
    const first = LEVELS[0]!;
    const last = LEVELS[LEVELS.length - 1]!;
    for (const [k, r] of results.entries()) {
      const slope = ((r[r.length - 1]!.daemonRssMiB - r[0]!.daemonRssMiB) * 1024) / Math.max(1, last - first);
      console.log(`${names[k]}: daemon memory slope ${slope.toFixed(0)} KiB per pod (${first} to ${last} pods)`);
    }
  }
}

async function main(): Promise<void> {
  const { names, results } = await withBenchTargets({ bridge: 'cribbenchkube', subnet: '10.248.0.0/16' }, async (targets) => {
    const pods = targets.map(() => [] as Pod[]);
    const results = targets.map(() => [] as LevelResult[]);
    try {
      for (const level of LEVELS) {
        for (const [k, t] of targets.entries()) {
          // Fewer pods than the last level: remove the extra ones.
          while (pods[k]!.length > level) await removePod(t, pods[k]!.pop()!);
          console.error(`${t.name}: ${level} pods: starting ${level - pods[k]!.length}`);
          await growTo(t, pods[k]!, level);
          const startMs = await startLatency(t);
          console.error(`${t.name}: ${level} pods: ${SECONDS} s of kubelet's pattern`);
          const window = await steady(t, pods[k]!);
          // Read at every level once its pattern has run, as a node's daemon is found: at 0 pods that
          // is an idle node's (kubelet polls it, the scale curve's pods came and went), not the
          // daemon right after its start-up's pull, which still holds the pull's garbage.
          results[k]!.push({ level, window, startMs, daemonRssMiB: rssMiB(t.daemonPid) });
        }
      }
      return { names: targets.map((t) => t.name), results };
    } finally {
      for (const [k, t] of targets.entries()) {
        console.error(`${t.name}: removing ${pods[k]!.length} pods`);
        const left = [...pods[k]!];
        await Promise.all(Array.from({ length: START_CONCURRENCY }, async () => {
          for (let p = left.pop(); p; p = left.pop()) await removePod(t, p).catch((err: unknown) => console.error(`${t.name}: remove pod:`, err));
        }));
      }
      for (let n = 0; n < seq; n++) {
        for (const t of targets) await removeCgroupParent(`${CGROUP_PARENT}/${t.name.split(' ')[0]}-pod${n}`);
      }
      await removeCgroupParent(CGROUP_PARENT);
    }
  }, {
    withoutContainerd: process.env.BENCH_CONTAINERD === '0',
    ...(CPU_PROF_DIR ? { daemonEnv: probeEnv({ cpuProfile: join(CPU_PROF_DIR, 'crib.cpuprofile') }) } : {}),
  });
  if (CPU_PROF_DIR) await writeFile(join(CPU_PROF_DIR, 'crib.windows.json'), JSON.stringify(windows));
  console.log(`\nkubelet's steady pattern: relist every ${RELIST_MS / 1000} s, stats every ${STATS_MS / 1000} s, an ExecSync probe per pod every ${PROBE_MS / 1000} s; one busybox sleeper per pod`);
  print(names, results);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
