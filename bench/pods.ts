// Benchmark (not a test): pod + container start through the CRI, and memory with pods running.
//   npm run bench:pods   (BENCH_N=100 sequential, BENCH_CONCURRENT=20; BENCH_ENDPOINT to point
//                         it at any CRI socket instead of starting crib and containerd here)
// For each runtime: RunPodSandbox, CreateContainer, StartContainer of busybox until running,
// N sequential and C concurrent, median/p95 per call; then daemon + per-container helper RSS
// (crib-monitor / containerd-shim) with 0, 20 and 100 pods running, the daemon alone at those
// counts, and its RSS freshly started and idle (goals: 60 MiB idle, 80 MiB with 100 pods).
// containerd (Debian's package, CRI plugin, CNI bridge plugin) runs in the same run when installed. crib is measured
// with and without every pod in its own user namespace (usernsOptions POD, a 64 Ki id range per
// pod as kubelet allocates them), interleaved: the "crib+userns" column, goal within 1.2x.
import { readFileSync, readdirSync } from 'node:fs';
import type { CriClient } from '../test-support/cri-client.js';
import { runOnBenchTargets } from '../test-support/bench-targets.js';
import { usernsLinux } from './ab-daemon.js';

const N = Number(process.env.BENCH_N ?? 100);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 20);

interface Timings { run: number[]; create: number[]; start: number[]; total: number[] }

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

let seq = 0;
/** A user-namespaced pod's blocks of host ids: 4,096 of them from host id 64 x 64 Ki. */
const USERNS_BLOCKS = { first: 64, count: 4096 };

async function startPodWith(cri: CriClient, image: string, t: Timings, userns = false): Promise<string> {
  const n = seq++;
  const linux = userns ? usernsLinux(n, USERNS_BLOCKS) : {};
  const config = { metadata: { name: `bench-${n}`, namespace: 'bench', uid: `bench-${process.pid}-${n}`, attempt: 0 }, linux, logDirectory: '' };
  const t0 = process.hrtime.bigint();
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  const t1 = process.hrtime.bigint();
  const { containerId } = await cri.runtime.CreateContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'], linux },
  });
  const t2 = process.hrtime.bigint();
  await cri.runtime.StartContainer({ containerId });
  t.run.push(Number(t1 - t0) / 1e6);
  t.create.push(Number(t2 - t1) / 1e6);
  t.start.push(ms(t2));
  t.total.push(ms(t0));
  return podSandboxId;
}

async function removeAll(cri: CriClient): Promise<void> {
  for (const p of (await cri.runtime.ListPodSandbox({})).items) {
    await cri.runtime.StopPodSandbox({ podSandboxId: p.id });
    await cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** RSS of the daemon plus every helper process whose command line mentions `marker`. */
function memoryMiB(daemonPid: number, helperName: string, marker: string): number {
  let kb = rssKb(daemonPid);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === daemonPid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(helperName) && cmd.includes(marker)) kb += rssKb(Number(p));
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** Memory with n pods: the daemon with its helpers, and the daemon alone (MiB). */
interface Memory { all: Record<number, number>; daemon: Record<number, number> }
interface Result { name: string; seq: Timings; conc: Timings; mem: Memory; freshRss: number }

/** Issue 14's goals for the daemon's own RSS (MiB). */
const GOAL_IDLE_RSS = 60;
const GOAL_100_POD_RSS = 80;

async function memoryAt(cri: CriClient, image: string, mem: Meters, userns: boolean): Promise<Memory> {
  const memory: Memory = { all: { 0: mem.all() }, daemon: { 0: mem.daemon() } };
  const scratch: Timings = { run: [], create: [], start: [], total: [] };
  for (const target of [20, 100]) {
    while (scratch.total.length < target) await startPodWith(cri, image, scratch, userns);
    await new Promise((r) => setTimeout(r, 1000));
    memory.all[target] = mem.all();
    memory.daemon[target] = mem.daemon();
  }
  await removeAll(cri);
  return memory;
}

interface Meters { all: () => number; daemon: () => number }

const timings = (): Timings => ({ run: [], create: [], start: [], total: [] });

async function measure(name: string, cri: CriClient, image: string, mem: Meters, freshRss: number): Promise<Result> {
  const warm = timings();
  for (let i = 0; i < 3; i++) await startPodWith(cri, image, warm);
  await removeAll(cri);
  const s = timings();
  for (let i = 0; i < N; i++) await startPodWith(cri, image, s);
  await removeAll(cri);
  const c = timings();
  await Promise.all(Array.from({ length: CONCURRENT }, () => startPodWith(cri, image, c)));
  await removeAll(cri);
  return { name, seq: s, conc: c, mem: await memoryAt(cri, image, mem, false), freshRss };
}

/**
 * crib with and without user namespaces, interleaved (one pod of each in turn, batches back to
 * back), so that a noisy machine weighs on both alike.
 */
async function measureUserns(cri: CriClient, image: string, mem: Meters, freshRss: number): Promise<Result[]> {
  const warm = timings();
  for (let i = 0; i < 3; i++) for (const u of [false, true]) await startPodWith(cri, image, warm, u);
  await removeAll(cri);
  const seq = [timings(), timings()];
  for (let i = 0; i < N; i++) for (const u of [0, 1]) await startPodWith(cri, image, seq[u]!, u === 1);
  await removeAll(cri);
  const conc = [timings(), timings()];
  for (const u of [0, 1]) {
    await Promise.all(Array.from({ length: CONCURRENT }, () => startPodWith(cri, image, conc[u]!, u === 1)));
    await removeAll(cri);
  }
  return [
    { name: 'crib', seq: seq[0]!, conc: conc[0]!, mem: await memoryAt(cri, image, mem, false), freshRss },
    { name: 'crib+userns', seq: seq[1]!, conc: conc[1]!, mem: await memoryAt(cri, image, mem, true), freshRss },
  ];
}

function print(results: Result[]): void {
  const line = (label: string, f: (r: Result) => string) => console.log(label.padEnd(34) + results.map((r) => f(r).padStart(22)).join(''));
  line('', (r) => r.name);
  for (const [mode, key] of [['sequential', 'seq'], [`${CONCURRENT} concurrent`, 'conc']] as const) {
    for (const call of ['run', 'create', 'start', 'total'] as const) {
      line(`${mode} ${call} (median/p95 ms)`, (r) => `${pct(r[key][call], 0.5).toFixed(1)} / ${pct(r[key][call], 0.95).toFixed(1)}`);
    }
  }
  line('daemon RSS, fresh and idle (MiB)', (r) => r.freshRss.toFixed(1));
  for (const n of [0, 20, 100]) line(`daemon RSS with ${n} pods (MiB)`, (r) => r.mem.daemon[n]!.toFixed(1));
  for (const n of [0, 20, 100]) line(`memory with ${n} pods (MiB)`, (r) => r.mem.all[n]!.toFixed(1));
  const crib = results.find((r) => r.name === 'crib');
  const userns = results.find((r) => r.name === 'crib+userns');
  const ctd = results.find((r) => r.name.startsWith('containerd'));
  if (crib && ctd) {
    console.log(`\ncrib / containerd: pod+container start median ${(pct(crib.seq.total, 0.5) / pct(ctd.seq.total, 0.5)).toFixed(2)}x ` +
      `(goal <= 0.33), memory with 100 pods ${(crib.mem.all[100]! / ctd.mem.all[100]!).toFixed(2)}x (goal <= 0.5)`);
  }
  if (crib) {
    console.log(`crib daemon RSS: fresh and idle ${crib.freshRss.toFixed(1)} MiB (goal <= ${GOAL_IDLE_RSS}), ` +
      `with 100 pods ${crib.mem.daemon[100]!.toFixed(1)} MiB (goal <= ${GOAL_100_POD_RSS})` +
      (ctd ? `; containerd ${ctd.freshRss.toFixed(1)} and ${ctd.mem.daemon[100]!.toFixed(1)} MiB` : ''));
  }
  if (crib && userns) {
    console.log(`crib+userns / crib (interleaved): pod+container start median ${(pct(userns.seq.total, 0.5) / pct(crib.seq.total, 0.5)).toFixed(2)}x, ` +
      `concurrent batches ${(pct(userns.conc.total, 0.5) / pct(crib.conc.total, 0.5)).toFixed(2)}x (goal <= 1.2)`);
  }
}

async function main(): Promise<void> {
  const results = (await runOnBenchTargets({ bridge: 'cribbenchctd', subnet: '10.249.0.0/16' }, async (t) => {
    const mem: Meters = { all: () => memoryMiB(t.daemonPid, t.helper.name, t.helper.marker), daemon: () => rssKb(t.daemonPid) / 1024 };
    return t.name === 'crib' ? measureUserns(t.cri, t.image, mem, t.freshRssMiB) : [await measure(t.name, t.cri, t.image, mem, t.freshRssMiB)];
  })).flat();
  console.log(`\nN=${N} sequential, ${CONCURRENT} concurrent; busybox sleep containers\n`);
  print(results);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
