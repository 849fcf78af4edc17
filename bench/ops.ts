// Benchmark (not a test): the CRI operations critest's benchmark mode times, one by one.
//   npm run bench:ops   (BENCH_N=50 rounds; BENCH_IMAGE_MB=2, the size of the image pulled and
//                        removed each round; BENCH_CONTAINERD=0: crib only; BENCH_CPU_PROF=dir
//                        and BENCH_SCHED_TRACE=dir, see below)
// A round, per runtime: RunPodSandbox, PodSandboxStatus, CreateContainer, StartContainer,
// ContainerStatus, ListPodSandbox, ListContainers, StopContainer, RemoveContainer,
// StopPodSandbox, RemovePodSandbox; then PullImage, ImageStatus, ListImages, RemoveImage of an
// image of its own (one random layer, so every pull downloads and unpacks it). containerd
// (Debian's package, CRI plugin, runc, CNI bridge) runs in the same run when installed, its
// rounds alternating with crib's so both see the same background load. Median and p95 per
// operation, and crib's ratio to containerd's against the goal: at most containerd's, and at
// most 1/5 of it for the pod operations (issue 14). Beside them, the netlink floor of a pod
// (test-support/netlink-floor.ts: one crib-pinns pinning a pod's namespaces and attaching its
// network, spawned from here), sampled in the same rounds: RunPodSandbox's goal is 3x of it.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withBenchTargets, type BenchTarget } from '../test-support/bench-targets.js';
import { buildImage, layerFromEntries, pushImage } from '../test-support/image-builder.js';
import { openNetlinkFloor } from '../test-support/netlink-floor.js';
import { probeEnv } from './probe-env.js';

const N = Number(process.env.BENCH_N ?? 50);
// BENCH_CPU_PROF=dir: crib's daemon writes a CPU profile there (crib.cpuprofile) and each timed
// call's window beside it (crib.windows.json), for bench/profile-windows.ts: the time between the
// windows is the daemon's background work.
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
// BENCH_SCHED_TRACE=dir: the same windows, with this client's pid and crib's, go to
// dir/ops.sched.json, for bench/sched-waits.ts to cut a scheduler trace of the whole machine
// taken through the run (its header says how).
const SCHED_DIR = process.env.BENCH_SCHED_TRACE;
const windows: { rpc: string; fromUs: number; toUs: number }[] = [];
const IMAGE_MB = Number(process.env.BENCH_IMAGE_MB ?? 2);
const WARMUP = 3;

const POD_OPS = ['RunPodSandbox', 'StopPodSandbox', 'RemovePodSandbox'];
const OPS = [
  'RunPodSandbox', 'PodSandboxStatus', 'CreateContainer', 'StartContainer', 'ContainerStatus', 'ListPodSandbox',
  'ListContainers', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox',
  'PullImage', 'ImageStatus', 'ListImages', 'RemoveImage',
] as const;
type Op = (typeof OPS)[number];
type Timings = Record<Op, number[]>;

const goalOf = (op: Op) => (POD_OPS.includes(op) ? 0.2 : 1);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

let seq = 0;

/** One round of every operation against `t`; timings go to `out` (undefined: warm-up). */
async function round(t: BenchTarget, pullImage: string, out: Timings | undefined): Promise<void> {
  const { cri } = t;
  const time = async <T>(op: Op, call: () => Promise<T>): Promise<T> => {
    const t0 = process.hrtime.bigint();
    const r = await call();
    const t1 = process.hrtime.bigint();
    out?.[op].push(Number(t1 - t0) / 1e6);
    // The profile's clock is the monotonic one hrtime reads (µs).
    if (out && (CPU_PROF_DIR || SCHED_DIR) && t.name === 'crib') windows.push({ rpc: op, fromUs: Number(t0 / 1000n), toUs: Number(t1 / 1000n) });
    return r;
  };
  const n = seq++;
  const config = { metadata: { name: `ops-${n}`, namespace: 'bench', uid: `ops-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await time('RunPodSandbox', () => cri.runtime.RunPodSandbox({ config }));
  await time('PodSandboxStatus', () => cri.runtime.PodSandboxStatus({ podSandboxId }));
  const { containerId } = await time('CreateContainer', () => cri.runtime.CreateContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image: t.image }, command: ['sleep', '100000'] },
  }));
  await time('StartContainer', () => cri.runtime.StartContainer({ containerId }));
  await time('ContainerStatus', () => cri.runtime.ContainerStatus({ containerId }));
  await time('ListPodSandbox', () => cri.runtime.ListPodSandbox({}));
  await time('ListContainers', () => cri.runtime.ListContainers({}));
  // timeout 0: SIGKILL at once in both runtimes (sleep as pid 1 ignores SIGTERM).
  await time('StopContainer', () => cri.runtime.StopContainer({ containerId, timeout: 0 }));
  await time('RemoveContainer', () => cri.runtime.RemoveContainer({ containerId }));
  await time('StopPodSandbox', () => cri.runtime.StopPodSandbox({ podSandboxId }));
  await time('RemovePodSandbox', () => cri.runtime.RemovePodSandbox({ podSandboxId }));

  const { imageRef } = await time('PullImage', () => cri.image.PullImage({ image: { image: pullImage } }));
  const status = await time('ImageStatus', () => cri.image.ImageStatus({ image: { image: pullImage } }));
  if (!status.image) throw new Error(`${t.name}: ImageStatus of ${pullImage} (${imageRef}) found nothing after pulling it`);
  await time('ListImages', () => cri.image.ListImages({}));
  await time('RemoveImage', () => cri.image.RemoveImage({ image: { image: pullImage } }));
}

/** An image of one layer of random files: nothing of it is shared with busybox. */
async function pushPullImage(t: BenchTarget): Promise<string> {
  const entries = [{ type: 'dir' as const, path: 'data', mode: 0o755 }];
  const fileSize = 256 * 1024;
  const files = Array.from({ length: Math.max(1, Math.round((IMAGE_MB * 1048576) / fileSize)) }, (_, i) =>
    ({ type: 'file' as const, path: `data/f${i}`, content: randomBytes(fileSize), mode: 0o644 }));
  const layer = await layerFromEntries([...entries, ...files], 'gzip');
  await pushImage(t.registry, 'bench/ops', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
  return `${t.registry.host}/bench/ops:latest`;
}

function print(names: string[], results: Timings[]): void {
  const cell = (xs: number[]) => `${pct(xs, 0.5).toFixed(2)} / ${pct(xs, 0.95).toFixed(2)}`;
  const header = ['operation (median / p95 ms)'.padEnd(30), ...names.map((n) => n.padStart(24))];
  if (results.length === 2) header.push('ratio median / p95'.padStart(22), 'goal'.padStart(8), '  met');
  console.log(header.join(''));
  const missed: string[] = [];
  for (const op of OPS) {
    const row = [op.padEnd(30), ...results.map((r) => cell(r[op]).padStart(24))];
    if (results.length === 2) {
      const [a, b] = results as [Timings, Timings];
      const med = pct(a[op], 0.5) / pct(b[op], 0.5);
      const p95 = pct(a[op], 0.95) / pct(b[op], 0.95);
      const goal = goalOf(op);
      const ok = med <= goal && p95 <= goal;
      if (!ok) missed.push(`${op} (${med.toFixed(2)}x / ${p95.toFixed(2)}x)`);
      row.push(`${med.toFixed(2)}x / ${p95.toFixed(2)}x`.padStart(22), `<= ${goal}`.padStart(8), ok ? '  yes' : '  NO');
    }
    console.log(row.join(''));
  }
  if (results.length === 2) {
    console.log(missed.length === 0 ? '\nevery operation meets its goal'
      : `\ngoal missed (crib / containerd, median / p95): ${missed.join(', ')}`);
  }
}

/** The pod operations beside the netlink floor sampled in the same rounds. */
function printFloor(crib: Timings, floor: { attach: number[]; detach: number[] }): void {
  const cell = (xs: number[]) => `${pct(xs, 0.5).toFixed(2)} / ${pct(xs, 0.95).toFixed(2)}`;
  console.log('\nnetlink floor: one crib-pinns pinning net+ipc+uts and attaching the pod (veth in the namespace, hairpin,');
  console.log('addresses, routes) over rtnetlink, spawned from Node; and deleting that veth (teardown does it in the background)');
  console.log(`  floor: pin + attach (median / p95 ms)   ${cell(floor.attach)}`);
  console.log(`  floor: veth delete  (median / p95 ms)   ${cell(floor.detach)}`);
  for (const op of POD_OPS) console.log(`  crib ${op.padEnd(34)}${cell(crib[op as Op])}`);
  const med = pct(crib.RunPodSandbox, 0.5) / pct(floor.attach, 0.5);
  const p95 = pct(crib.RunPodSandbox, 0.95) / pct(floor.attach, 0.95);
  const ok = med <= 3 && p95 <= 3;
  console.log(`  RunPodSandbox / floor: ${med.toFixed(2)}x / ${p95.toFixed(2)}x (median / p95), goal <= 3: ${ok ? 'yes' : 'NO'}`);
}

/** crib's daemon, for BENCH_SCHED_TRACE. */
let daemonPid = 0;

async function main(): Promise<void> {
  const floor = await openNetlinkFloor(`cribflr${(process.pid % 65536).toString(16)}`, '10.245.0.0/24');
  const floorTimes = { attach: [] as number[], detach: [] as number[] };
  try {
    const { names, results } = await withBenchTargets({ bridge: 'cribbenchops', subnet: '10.246.0.0/16' }, async (targets) => {
      const image = await pushPullImage(targets[0]!);
      daemonPid = targets[0]!.daemonPid;
      const timings = targets.map(() => Object.fromEntries(OPS.map((op) => [op, [] as number[]])) as Timings);
      for (let i = 0; i < WARMUP; i++) {
        for (const t of targets) await round(t, image, undefined);
        await floor.sample();
      }
      for (let i = 0; i < N; i++) {
        if (i % 10 === 0) console.error(`round ${i + 1}/${N}`);
        for (const [k, t] of targets.entries()) await round(t, image, timings[k]);
        const f = await floor.sample();
        floorTimes.attach.push(f.attach);
        floorTimes.detach.push(f.detach);
      }
      return { names: targets.map((t) => t.name), results: timings };
    }, {
      withoutContainerd: process.env.BENCH_CONTAINERD === '0',
      ...(CPU_PROF_DIR ? { daemonEnv: probeEnv({ cpuProfile: join(CPU_PROF_DIR, 'crib.cpuprofile') }) } : {}),
    });
    if (CPU_PROF_DIR) await writeFile(join(CPU_PROF_DIR, 'crib.windows.json'), JSON.stringify(windows));
    if (SCHED_DIR) await writeFile(join(SCHED_DIR, 'ops.sched.json'), JSON.stringify({ clientPid: process.pid, daemonPid, windows }));
    console.log(`\nN=${N} rounds per runtime, alternating; busybox sleep container; pulled image: 1 layer, ${IMAGE_MB} MiB of random files\n`);
    print(names, results);
    printFloor(results[0]!, floorTimes);
  } finally {
    await floor.close();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
