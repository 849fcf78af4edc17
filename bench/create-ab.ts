// Benchmark (not a test): CreateContainer and StartContainer, A/B between two builds (issue 14:
// the runtime's create moved from CreateContainer to StartContainer, as containerd has it).
//   npx tsx bench/create-ab.ts   (BENCH_N=20 rounds; BENCH_BASE=/path/to/another/checkout, built:
//                                 its daemon runs beside this one's, rounds alternating which goes
//                                 first, so both see the same background load)
// A round, per daemon, the pod lifecycle bench/ops.ts times: RunPodSandbox, CreateContainer,
// StartContainer, StopContainer (timeout 0), RemoveContainer, StopPodSandbox, RemovePodSandbox;
// CreateContainer, StartContainer and their sum (what a pod's start waits for) are reported.
// Without BENCH_BASE it times this checkout alone.
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry } from '../test-support/registry.js';

const N = Number(process.env.BENCH_N ?? 20);
const BASE = process.env.BENCH_BASE;
const WARMUP = 3;
const OPS = ['CreateContainer', 'StartContainer', 'Create+Start'] as const;
type Op = (typeof OPS)[number];

interface Target { name: string; d: TestDaemon; times: Record<Op, number[]> }

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
let seq = 0;

async function round(t: Target, image: string, record: boolean): Promise<void> {
  const rt = t.d.cri.runtime;
  const time = async <T>(op: Op, call: () => Promise<T>): Promise<T> => {
    const t0 = process.hrtime.bigint();
    const r = await call();
    if (record) t.times[op].push(Number(process.hrtime.bigint() - t0) / 1e6);
    return r;
  };
  const n = seq++;
  const config = { metadata: { name: `cr-${n}`, namespace: 'bench', uid: `cr-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await rt.RunPodSandbox({ config });
  const t0 = process.hrtime.bigint();
  const { containerId } = await time('CreateContainer', () => rt.CreateContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
  }));
  await time('StartContainer', () => rt.StartContainer({ containerId }));
  if (record) t.times['Create+Start'].push(Number(process.hrtime.bigint() - t0) / 1e6);
  await rt.StopContainer({ containerId, timeout: 0 });
  await rt.RemoveContainer({ containerId });
  await rt.StopPodSandbox({ podSandboxId });
  await rt.RemovePodSandbox({ podSandboxId });
}

const registry = await startRegistry();
const targets: Target[] = [];
try {
  await pushBusybox(registry, 'library/busybox', 'latest');
  const image = `${registry.host}/library/busybox:latest`;
  const start = async (name: string, daemonModule: string): Promise<void> => {
    const { startDaemon: start } = (await import(daemonModule)) as { startDaemon: typeof startDaemon };
    const d = await start({ logLevel: 'warn' });
    await d.cri.image.PullImage({ image: { image } });
    targets.push({ name, d, times: Object.fromEntries(OPS.map((op) => [op, [] as number[]])) as Record<Op, number[]> });
  };
  if (BASE) await start(`A: ${BASE}`, join(BASE, 'test-support/daemon.ts'));
  await start(BASE ? 'B: this checkout' : 'crib', '../test-support/daemon.js');
  for (let i = 0; i < WARMUP; i++) for (const t of targets) await round(t, image, false);
  for (let r = 0; r < N; r++) {
    const order = r % 2 ? [...targets].reverse() : targets;
    for (const t of order) await round(t, image, true);
  }
  console.log(`N=${N} rounds, alternating; median / p95 ms`);
  console.log(['operation'.padEnd(20), ...targets.map((t) => t.name.padStart(30))].join(''));
  for (const op of OPS) {
    console.log([op.padEnd(20), ...targets.map((t) => `${pct(t.times[op], 0.5).toFixed(2)} / ${pct(t.times[op], 0.95).toFixed(2)}`.padStart(30))].join(''));
  }
} finally {
  for (const t of targets) await t.d.cleanup().catch((err: unknown) => console.error('cleanup:', err));
  await registry.stop();
}
