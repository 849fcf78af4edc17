// Benchmark (not a test): the cost of the in-memory CRI calls, A/B between two builds (issue 14:
// the gRPC server under them). Both daemons run side by side, each with one pod, one container
// and one image; rounds alternate which build is called first, so a loaded machine weighs on both.
//   npx tsx bench/rpc-ab.ts [CLI_A] [CLI_B]
//   (default A = /work/main/dist/cli.js, B = this checkout's dist/cli.js; BENCH_N rounds, default
//    20; BENCH_CALLS calls of each method per round and build, default 100; BENCH_NODE_FLAGS_A and
//    _B: node flags for that build's daemon, e.g. to compare V8 settings on one build; BENCH_PODS
//    pods per daemon, each with a running container, default 1: what the listings list)
// Per method: the client-side latency of each call (median / p95 over every call), and the
// daemon's CPU (user + system, /proc/<pid>/stat) per call, over each round's calls of it.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, withBenchDaemons, type BenchDaemon, type StartBenchDaemon } from './ab-daemon.js';
import { runSleeperPod } from '../test-support/bench-targets.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI_A = resolve(process.argv[2] ?? '/work/main/dist/cli.js');
const CLI_B = resolve(process.argv[3] ?? join(HERE, '../dist/cli.js'));
const N = Number(process.env.BENCH_N ?? 20);
const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const PODS = Number(process.env.BENCH_PODS ?? 1);
const METHODS = ['Version', 'ListPodSandbox', 'PodSandboxStatus', 'ContainerStatus', 'ListContainers', 'ImageStatus', 'ListImages'] as const;
type Method = (typeof METHODS)[number];

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Build extends BenchDaemon {
  call: Record<Method, () => Promise<unknown>>;
  latency: Record<Method, number[]>;
  cpuPerCall: Record<Method, number[]>;
}

async function startBuild(start: StartBenchDaemon, name: string, cli: string, index: number, image: string): Promise<Build> {
  const flags = (process.env[`BENCH_NODE_FLAGS_${name}`] ?? '').split(' ').filter(Boolean);
  const d = await start({ name, cli, index, dirPrefix: 'crib-rpcab-', bridgePrefix: 'cribr', subnet16: '10.247', nodeFlags: flags });
  const { cri } = d;
  await cri.image.PullImage({ image: { image } });
  const runPod = (n: number) => runSleeperPod(cri, image, { name: `ab-${n}`, uid: `ab-${index}-${n}` });
  const { podSandboxId, containerId } = await runPod(0);
  for (let n = 1; n < PODS; n++) await runPod(n);
  const call: Record<Method, () => Promise<unknown>> = {
    Version: () => cri.runtime.Version({}),
    ListPodSandbox: () => cri.runtime.ListPodSandbox({}),
    PodSandboxStatus: () => cri.runtime.PodSandboxStatus({ podSandboxId }),
    ContainerStatus: () => cri.runtime.ContainerStatus({ containerId }),
    ListContainers: () => cri.runtime.ListContainers({}),
    ImageStatus: () => cri.image.ImageStatus({ image: { image } }),
    ListImages: () => cri.image.ListImages({}),
  };
  const empty = () => Object.fromEntries(METHODS.map((m) => [m, [] as number[]])) as Record<Method, number[]>;
  return { ...d, call, latency: empty(), cpuPerCall: empty() };
}

async function measure(b: Build, m: Method, record: boolean): Promise<void> {
  const cpu0 = cpuSeconds(b.proc.pid!);
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await b.call[m]();
    if (record) b.latency[m].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  if (record) b.cpuPerCall[m].push(((cpuSeconds(b.proc.pid!) - cpu0) * 1000) / CALLS);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  await withBenchDaemons(async (image, start) => {
    const builds = [await startBuild(start, 'A', CLI_A, 1, image), await startBuild(start, 'B', CLI_B, 2, image)];
    // Warm-up: both daemons' code paths compiled before anything is recorded.
    for (const b of builds) for (const m of METHODS) await measure(b, m, false);
    for (let i = 0; i < N; i++) {
      for (const m of METHODS) {
        for (const b of (i + METHODS.indexOf(m)) % 2 === 0 ? builds : [...builds].reverse()) await measure(b, m, true);
      }
      process.stdout.write(`round ${i + 1}/${N}\r`);
    }
    const flagsOf = (b: Build) => (process.env[`BENCH_NODE_FLAGS_${b.name}`] ? ` (${process.env[`BENCH_NODE_FLAGS_${b.name}`]})` : '');
    console.log(`\nN=${N} rounds x ${CALLS} calls per method and build, alternated; A = ${builds[0]!.cli}${flagsOf(builds[0]!)}, B = ${builds[1]!.cli}${flagsOf(builds[1]!)}`);
    console.log('method'.padEnd(18) + 'latency ms median / p95'.padEnd(40) + 'daemon CPU ms/call median / p95');
    for (const m of METHODS) {
      const lat = builds.map((b) => `${b.name} ${pct(b.latency[m], 0.5).toFixed(3)} / ${pct(b.latency[m], 0.95).toFixed(3)}`.padEnd(20)).join('');
      const cpu = builds.map((b) => `${b.name} ${pct(b.cpuPerCall[m], 0.5).toFixed(3)} / ${pct(b.cpuPerCall[m], 0.95).toFixed(3)}`.padEnd(20)).join('');
      const ratio = pct(builds[1]!.latency[m], 0.5) / pct(builds[0]!.latency[m], 0.5);
      console.log(m.padEnd(18) + lat.padEnd(40) + cpu + `  B/A median latency ${ratio.toFixed(2)}`);
    }
  });
}

runBench(main);
