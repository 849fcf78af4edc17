// Benchmark (not a test): bursts of concurrent pod starts, A/B between two builds (issue 14: the
// daemon's event loop is the one thread every call of a burst shares, so what it blocks on, a
// helper's spawn or a mount, is paid by every pod of the burst).
//   npx tsx bench/burst-ab.ts [CLI_A] [CLI_B]
//   (default A = /work/main/dist/cli.js, B = this checkout's dist/cli.js; BENCH_N bursts per
//    build, default 10; BENCH_BURST pods per burst, default 20; BENCH_USERNS=1: user-namespaced
//    pods, a 64 Ki block of host ids each, as kubelet gives)
// Both daemons run side by side; bursts alternate which build goes first. A burst: BENCH_BURST
// busybox pods started at once (RunPodSandbox, CreateContainer, StartContainer each), then
// stopped and removed one by one, untimed. Per build: the burst's total (median / p95 ms), each
// step's median over the burst's pods, and the daemon's CPU per pod started (user / system ms,
// all its threads, from /proc/<pid>/stat around the starts).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, startTimedPod, usernsLinux, withBenchDaemons, type BenchDaemon } from './ab-daemon.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI_A = resolve(process.argv[2] ?? '/work/main/dist/cli.js');
const CLI_B = resolve(process.argv[3] ?? join(HERE, '../dist/cli.js'));
const N = Number(process.env.BENCH_N ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 20);
const USERNS = process.env.BENCH_USERNS === '1';
const STEPS = ['run', 'create', 'start'] as const;

interface Build extends BenchDaemon {
  bursts: number[];
  steps: Record<(typeof STEPS)[number], number[]>;
  cpu: { user: number; system: number; pods: number };
}

const TICK_MS = 10; // USER_HZ is 100 on Linux
/** The process's user and system CPU so far (ms), all its threads. */
function cpuOf(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * TICK_MS, system: Number(fields[12]) * TICK_MS };
}

let seq = 0;
async function startPod(b: Build, image: string, record: boolean): Promise<string> {
  const n = seq++;
  const { podSandboxId, times } = await startTimedPod(b.cri, image, `burst-${n}`, USERNS ? usernsLinux(n) : {});
  if (record) for (const step of STEPS) b.steps[step].push(times[step]);
  return podSandboxId;
}

async function burst(b: Build, image: string, record: boolean): Promise<void> {
  const before = cpuOf(b.proc.pid!);
  const t0 = performance.now();
  const ids = await Promise.all(Array.from({ length: BURST }, () => startPod(b, image, record)));
  if (record) {
    b.bursts.push(performance.now() - t0);
    const after = cpuOf(b.proc.pid!);
    b.cpu.user += after.user - before.user;
    b.cpu.system += after.system - before.system;
    b.cpu.pods += BURST;
  }
  for (const id of ids) {
    await b.cri.runtime.StopPodSandbox({ podSandboxId: id });
    await b.cri.runtime.RemovePodSandbox({ podSandboxId: id });
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  await withBenchDaemons(async (image, start) => {
    const builds: Build[] = [];
    for (const [i, cli] of [CLI_A, CLI_B].entries()) {
      const d = await start({ name: 'AB'[i]!, cli, index: i + 1, dirPrefix: 'crib-burst-', bridgePrefix: 'cribb', subnet16: '10.246' });
      builds.push({ ...d, bursts: [], steps: { run: [], create: [], start: [] }, cpu: { user: 0, system: 0, pods: 0 } });
      await d.cri.image.PullImage({ image: { image } });
      await burst(builds[i]!, image, false);
    }
    for (let s = 0; s < N; s++) {
      for (const b of s % 2 === 0 ? builds : [...builds].reverse()) await burst(b, image, true);
      process.stderr.write(`burst ${s + 1}/${N}\r`);
    }
    console.log(`\nN=${N} bursts of ${BURST} pods per build, alternating${USERNS ? ', user-namespaced pods' : ''}; A = ${CLI_A}, B = ${CLI_B}`);
    console.log(''.padEnd(34) + builds.map((b) => `${b.name}`.padEnd(22)).join('') + 'B / A');
    const row = (label: string, cell: (b: Build) => number, fmt: (b: Build) => string) =>
      console.log(label.padEnd(34) + builds.map((b) => fmt(b).padEnd(22)).join('') + `${(cell(builds[1]!) / cell(builds[0]!)).toFixed(2)}x`);
    row('burst total (median / p95 ms)', (b) => pct(b.bursts, 0.5), (b) => `${pct(b.bursts, 0.5).toFixed(1)} / ${pct(b.bursts, 0.95).toFixed(1)}`);
    for (const step of STEPS) row(`${step} (median / p95 ms)`, (b) => pct(b.steps[step], 0.5), (b) => `${pct(b.steps[step], 0.5).toFixed(1)} / ${pct(b.steps[step], 0.95).toFixed(1)}`);
    row('daemon CPU per pod (user / sys ms)', (b) => (b.cpu.user + b.cpu.system) / b.cpu.pods,
      (b) => `${(b.cpu.user / b.cpu.pods).toFixed(2)} / ${(b.cpu.system / b.cpu.pods).toFixed(2)}`);
  });
}

runBench(main);
