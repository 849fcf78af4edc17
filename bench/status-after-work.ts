// Benchmark (not a test): how the in-memory CRI calls (statuses and listings) answer right after
// pod, container and image work, against the same calls on a daemon left alone (issue 14:
// bench:ops times them inside its rounds). One daemon per build given; a round does bench:ops's
// sequence and, after each step, times a burst of the status call that follows it there, so the
// burst's first calls fall into whatever the step left running in the background. Rounds alternate
// which build goes first when two are given.
//   npx tsx bench/status-after-work.ts [CLI_A] [CLI_B]
//   (default one build, this checkout's dist/cli.js; BENCH_N rounds, default 20; BENCH_BURST calls
//    per burst, default 8; BENCH_CPU_PROF=dir: each daemon writes a CPU profile there and the
//    calls' windows beside it, for bench/profile-windows.ts's cut; BENCH_NODE_FLAGS_A and _B:
//    node flags for that build's daemon, e.g. to compare V8 settings on one build)
// Per step: the latency of the burst's first call, its second, and the rest (median / p95), and
// the same calls after 500 ms of quiet; and the daemon's main thread per call (/proc schedstat):
// its CPU, which a loaded machine inflates far less than latency, and its wait for a CPU.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, withBenchDaemons, type BenchDaemon, type StartBenchDaemon } from './ab-daemon.js';
import { probeEnv } from './probe-env.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLIS = process.argv.length > 2 ? process.argv.slice(2).map((p) => resolve(p)) : [join(HERE, '../dist/cli.js')];
const N = Number(process.env.BENCH_N ?? 20);
const BURST = Number(process.env.BENCH_BURST ?? 8);
if (!Number.isInteger(BURST) || BURST < 3) throw new Error(`BENCH_BURST must be an integer of at least 3 (the first call, the second and the rest), not ${process.env.BENCH_BURST}`);
const QUIET_MS = 500;
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Window { rpc: string; step: string; call: number; fromUs: number; toUs: number }

interface Build extends BenchDaemon {
  /** Latencies (ms) by "<step> <call>" and position in the burst: first, second, rest. */
  times: Map<string, [number[], number[], number[]]>;
  /** Main-thread counters per call (first call, the rest): CPU ms, run-queue wait ms, minor faults. */
  counters: Map<string, [number, number, number][][]>;
  windows: Window[];
}

async function startBuild(start: StartBenchDaemon, name: string, cli: string, index: number): Promise<Build> {
  const env = CPU_PROF_DIR
    ? { ...process.env, ...probeEnv({ cpuProfile: join(CPU_PROF_DIR, `${name}.cpuprofile`) }) }
    : process.env;
  const nodeFlags = (process.env[`BENCH_NODE_FLAGS_${name}`] ?? '').split(' ').filter(Boolean);
  const d = await start({ name, cli, index, dirPrefix: 'crib-saw-', bridgePrefix: 'cribs', subnet16: '10.248', env, nodeFlags });
  return { ...d, times: new Map(), counters: new Map(), windows: [] };
}

/** The daemon's main thread (/proc schedstat): CPU ms, ms runnable but waiting for a CPU, and
 * minor faults. */
function threadCounters(pid: number): [number, number, number] {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  const f = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return [run! / 1e6, wait! / 1e6, Number(f[7])];
}

/** A burst of `call` right after a step (or after quiet): each call timed by its position. */
async function burst(b: Build, key: string, call: () => Promise<unknown>, record: boolean): Promise<void> {
  for (let i = 0; i < BURST; i++) {
    const c0 = threadCounters(b.proc.pid!);
    const fromUs = nowUs();
    await call();
    const toUs = nowUs();
    const c1 = threadCounters(b.proc.pid!);
    if (!record) continue;
    let cs = b.counters.get(key);
    if (!cs) b.counters.set(key, (cs = [[], []]));
    cs[Math.min(i, 1)]!.push(c1.map((v, k) => v - c0[k]!) as [number, number, number]);
    let slot = b.times.get(key);
    if (!slot) b.times.set(key, (slot = [[], [], []]));
    slot[Math.min(i, 2)]!.push((toUs - fromUs) / 1000);
    // The first call of a burst is the one that meets the background work: its own bucket in
    // profile-windows.ts's cut.
    b.windows.push({ rpc: `${key.trim()} (${i === 0 ? '1st' : 'rest'})`, step: key, call: i, fromUs, toUs });
  }
}

let seq = 0;

async function round(b: Build, image: string, record: boolean): Promise<void> {
  const { cri } = b;
  const n = seq++;
  const config = { metadata: { name: `saw-${n}`, namespace: 'bench', uid: `saw-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  const podStatus = () => cri.runtime.PodSandboxStatus({ podSandboxId });
  await burst(b, 'RunPodSandbox -> PodSandboxStatus', podStatus, record);
  const { containerId } = await cri.runtime.CreateContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
  });
  const ctrStatus = () => cri.runtime.ContainerStatus({ containerId });
  await burst(b, 'CreateContainer -> ContainerStatus', ctrStatus, record);
  await cri.runtime.StartContainer({ containerId });
  await burst(b, 'StartContainer -> ContainerStatus', ctrStatus, record);
  await burst(b, '   then ListPodSandbox', () => cri.runtime.ListPodSandbox({}), record);
  await burst(b, '   then ListContainers', () => cri.runtime.ListContainers({}), record);
  await sleep(QUIET_MS);
  await burst(b, 'quiet -> ContainerStatus', ctrStatus, record);
  await burst(b, 'quiet -> PodSandboxStatus', podStatus, record);
  await burst(b, 'quiet -> ListContainers', () => cri.runtime.ListContainers({}), record);
  await cri.runtime.StopContainer({ containerId, timeout: 0 });
  await cri.runtime.RemoveContainer({ containerId });
  await burst(b, 'RemoveContainer -> ListContainers', () => cri.runtime.ListContainers({}), record);
  await cri.runtime.StopPodSandbox({ podSandboxId });
  await cri.runtime.RemovePodSandbox({ podSandboxId });
  await burst(b, 'RemovePodSandbox -> ListPodSandbox', () => cri.runtime.ListPodSandbox({}), record);
  await cri.image.PullImage({ image: { image } });
  await burst(b, 'PullImage -> ImageStatus', () => cri.image.ImageStatus({ image: { image } }), record);
  await burst(b, '   then ListImages', () => cri.image.ListImages({}), record);
  await sleep(QUIET_MS);
  await burst(b, 'quiet -> ImageStatus', () => cri.image.ImageStatus({ image: { image } }), record);
}

async function main(): Promise<void> {
  const builds: Build[] = [];
  try {
    await withBenchDaemons((image, start) => measure(builds, image, start));
  } finally {
    if (CPU_PROF_DIR) for (const b of builds) await writeFile(join(CPU_PROF_DIR, `${b.name}.windows.json`), JSON.stringify(b.windows));
  }
}

async function measure(builds: Build[], image: string, start: StartBenchDaemon): Promise<void> {
  for (const [i, cli] of CLIS.entries()) builds.push(await startBuild(start, CLIS.length > 1 ? 'AB'[i]! : 'crib', cli, i + 1));
  for (const b of builds) {
    await b.cri.image.PullImage({ image: { image } });
    for (let i = 0; i < 3; i++) await round(b, image, false);
  }
  for (let i = 0; i < N; i++) {
    for (const b of i % 2 === 0 ? builds : [...builds].reverse()) await round(b, image, true);
    process.stderr.write(`round ${i + 1}/${N}\r`);
  }
  console.log(`\nN=${N} rounds, bursts of ${BURST} calls; ${builds.map((b) => `${b.name} = ${b.cli}`).join(', ')}`);
  console.log('step -> call'.padEnd(38) + builds.map((b) => `${b.name}: 1st / 2nd / rest (median, p95 ms)`.padEnd(60)).join(''));
  const cell = (xs: number[]) => `${pct(xs, 0.5).toFixed(2)}, ${pct(xs, 0.95).toFixed(2)}`;
  for (const key of builds[0]!.times.keys()) {
    console.log(key.padEnd(38) + builds.map((b) => b.times.get(key)!.map(cell).join(' / ').padEnd(60)).join(''));
  }
  console.log('\ndaemon main thread per call, mean: CPU ms, ms waiting for a CPU, minor faults; 1st / rest');
  const mean = (xs: number[]) => (xs.reduce((a, c) => a + c, 0) / xs.length).toFixed(3);
  for (const key of builds[0]!.counters.keys()) {
    console.log(key.padEnd(38) + builds.map((b) => b.counters.get(key)!.map((rows) => [0, 1, 2].map((k) => mean(rows.map((r) => r[k]!))).join(', ')).join(' / ').padEnd(60)).join(''));
  }
}

runBench(main);
