// Benchmark (not a test): pod + container start with few and with many pods on the node, A/B
// between two builds (issue 14's scale curve: start latency should stay flat as pods are added).
// Both daemons run side by side and share the node's mount table and bridge ports' kernel, so
// each level's pods are split between them; samples alternate which build starts first.
//   npx tsx bench/start-scale-ab.ts [CLI_A] [CLI_B]
//   (default A = /work/main/dist/cli.js, B = this checkout's dist/cli.js; BENCH_LEVELS: pods on
//    the node, default "0,250"; BENCH_N samples per level and build, default 30; BENCH_USERNS=1:
//    the sampled pods are user-namespaced, as kubelet's hostUsers: false pods, each on a 64 Ki
//    block of host ids of its own)
// Per level and build: RunPodSandbox, CreateContainer, StartContainer and their total (median /
// p95 ms), each sample a busybox pod started then stopped and removed.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench, startTimedPod, usernsLinux, withBenchDaemons, type BenchDaemon } from './ab-daemon.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI_A = resolve(process.argv[2] ?? '/work/main/dist/cli.js');
const CLI_B = resolve(process.argv[3] ?? join(HERE, '../dist/cli.js'));
const LEVELS = (process.env.BENCH_LEVELS ?? '0,250').split(',').map(Number).sort((a, b) => a - b);
const N = Number(process.env.BENCH_N ?? 30);
const STEPS = ['run', 'create', 'start', 'total'] as const;
type Step = (typeof STEPS)[number];

interface Pod { podSandboxId: string }
interface Build extends BenchDaemon { pods: Pod[]; times: Map<number, Record<Step, number[]>> }

const USERNS = process.env.BENCH_USERNS === '1';

let seq = 0;
/** `measured`: a warm-up or a sample (user-namespaced with BENCH_USERNS), not a level's filler. */
async function startPod(b: Build, image: string, times?: Record<Step, number[]>, measured = times !== undefined): Promise<Pod> {
  const n = seq++;
  const { podSandboxId, times: t } = await startTimedPod(b.cri, image, `scale-${n}`, USERNS && measured ? usernsLinux(n) : {});
  if (times) {
    times.run.push(t.run);
    times.create.push(t.create);
    times.start.push(t.start);
    times.total.push(t.run + t.create + t.start);
  }
  return { podSandboxId };
}

async function removePod(b: Build, p: Pod): Promise<void> {
  await b.cri.runtime.StopPodSandbox({ podSandboxId: p.podSandboxId });
  await b.cri.runtime.RemovePodSandbox({ podSandboxId: p.podSandboxId });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').trimEnd().split('\n').length;

async function main(): Promise<void> {
  await withBenchDaemons(async (image, start) => {
    const builds: Build[] = [];
    for (const [i, cli] of [CLI_A, CLI_B].entries()) {
      const d = await start({ name: 'AB'[i]!, cli, index: i + 1, dirPrefix: 'crib-scale-', bridgePrefix: 'cribk', subnet16: '10.245' });
      builds.push({ ...d, pods: [], times: new Map() });
      await d.cri.image.PullImage({ image: { image } });
      for (let w = 0; w < 3; w++) await removePod(builds[i]!, await startPod(builds[i]!, image, undefined, true));
    }
    const nodeMounts = new Map<number, number>();
    for (const level of LEVELS) {
      // Each build holds its half of the level's pods, started a few at a time.
      for (const [i, b] of builds.entries()) {
        const want = Math.floor(level / 2) + (i < level % 2 ? 1 : 0);
        while (b.pods.length < want) {
          const batch = Array.from({ length: Math.min(4, want - b.pods.length) }, () => startPod(b, image));
          b.pods.push(...await Promise.all(batch));
        }
      }
      await new Promise((r) => setTimeout(r, 3000));
      nodeMounts.set(level, mounts());
      for (const b of builds) b.times.set(level, { run: [], create: [], start: [], total: [] });
      for (let s = 0; s < N; s++) {
        for (const b of s % 2 === 0 ? builds : [...builds].reverse()) await removePod(b, await startPod(b, image, b.times.get(level)));
        process.stderr.write(`${level} pods: sample ${s + 1}/${N}\r`);
      }
    }
    console.log(`\nN=${N} samples per level and build, alternating${USERNS ? ', user-namespaced pods' : ''}; A = ${CLI_A}, B = ${CLI_B}`);
    console.log('pods on the node (mounts)'.padEnd(28) + 'step'.padEnd(8) + builds.map((b) => `${b.name}: median / p95 ms`.padEnd(26)).join('') + 'B / A (median)');
    for (const level of LEVELS) {
      for (const step of STEPS) {
        const cells = builds.map((b) => b.times.get(level)![step]);
        console.log(`${level} (${nodeMounts.get(level)})`.padEnd(28) + step.padEnd(8) +
          cells.map((xs) => `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)}`.padEnd(26)).join('') +
          `${(pct(cells[1]!, 0.5) / pct(cells[0]!, 0.5)).toFixed(2)}x`);
      }
    }
    const [first, last] = [LEVELS[0]!, LEVELS[LEVELS.length - 1]!];
    if (first !== last) {
      console.log(`\ngrowth of the total median from ${first} to ${last} pods: ` +
        builds.map((b) => {
          const growth = pct(b.times.get(last)!.total, 0.5) - pct(b.times.get(first)!.total, 0.5);
          return `${b.name} ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} ms`;
        }).join(', '));
    }
  });
}

runBench(main);
