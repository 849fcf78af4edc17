// Benchmark (not a test): the daemon's event-loop delay while it serves a burst of pod
// operations, and single-pod Run/Stop/Remove times beside it.
//   npx tsx bench/pod-burst.ts   (BENCH_N=8 rounds; BENCH_BURST=10 pods per burst;
//                                 BENCH_BASE=/path/to/another/checkout, built: A/B against it)
// A round: three pods one after the other (Run, Stop, Remove, each timed, each with a host
// port), then a burst: BENCH_BURST pods run at once (every other one with a host port), stopped
// at once, removed at once. The daemon's largest and 99th-percentile event-loop delay over the
// burst come from bench/loop-delay-probe.mjs (loaded with NODE_OPTIONS): every helper the pod
// path runs (crib-pinns pinning + attach, its detach that outlives StopPodSandbox) must start
// without stalling the RPCs around it (issue 14; sys/posix-spawn.ts).
// With BENCH_BASE, a daemon from that checkout (its dist/ and native/build/) runs beside this
// one's, rounds alternating which goes first, so both see the same background load.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { freePort } from '../test-support/registry.js';
import { probeEnv } from './probe-env.js';

const N = Number(process.env.BENCH_N ?? 8);
const BURST = Number(process.env.BENCH_BURST ?? 10);
const BASE = process.env.BENCH_BASE;

interface Target { name: string; d: TestDaemon; probeFile: string; seq: number }
interface Figures { burstMaxMs: number[]; burstP99Ms: number[]; burstWallMs: number[]; run: number[]; stop: number[]; remove: number[] }
const figures = (): Figures => ({ burstMaxMs: [], burstP99Ms: [], burstWallMs: [], run: [], stop: [], remove: [] });

const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The delay since the previous window (SIGUSR2 to the probe, which writes seq, maxMs, p99Ms). */
async function loopWindow(t: Target): Promise<{ maxMs: number; p99Ms: number }> {
  process.kill(t.d.proc.pid!, 'SIGUSR2');
  const want = ++t.seq;
  for (let i = 0; i < 2000; i++) {
    if (existsSync(t.probeFile)) {
      const r = JSON.parse(readFileSync(t.probeFile, 'utf8')) as { seq: number; maxMs: number; p99Ms: number };
      if (r.seq >= want) return r;
    }
    await sleep(5);
  }
  throw new Error(`${t.name}: the loop-delay probe did not answer (is NODE_OPTIONS reaching the daemon?)`);
}

let podSeq = 0;
function podConfig(hostPort?: number) {
  const n = podSeq++;
  return {
    metadata: { name: `burst-${n}`, namespace: 'bench', uid: `burst-${process.pid}-${n}`, attempt: 0 },
    hostname: `burst${n}`, logDirectory: '', linux: {},
    ...(hostPort === undefined ? {} : { portMappings: [{ protocol: 0, containerPort: 80, hostPort }] }),
  };
}

async function round(t: Target, out: Figures): Promise<void> {
  const rt = t.d.cri.runtime;
  for (let i = 0; i < 3; i++) {
    const config = podConfig(await freePort());
    let t0 = process.hrtime.bigint();
    const { podSandboxId } = await rt.RunPodSandbox({ config });
    out.run.push(since(t0));
    t0 = process.hrtime.bigint();
    await rt.StopPodSandbox({ podSandboxId });
    out.stop.push(since(t0));
    t0 = process.hrtime.bigint();
    await rt.RemovePodSandbox({ podSandboxId });
    out.remove.push(since(t0));
  }
  const ports = await Promise.all(Array.from({ length: BURST }, (_, i) => (i % 2 ? freePort() : undefined)));
  await sleep(300); // the single pods' background veth deletes end outside the window
  await loopWindow(t);
  const t0 = process.hrtime.bigint();
  const ids = await Promise.all(ports.map(async (p) => (await rt.RunPodSandbox({ config: podConfig(p) })).podSandboxId));
  await Promise.all(ids.map((podSandboxId) => rt.StopPodSandbox({ podSandboxId })));
  await Promise.all(ids.map((podSandboxId) => rt.RemovePodSandbox({ podSandboxId })));
  out.burstWallMs.push(since(t0));
  await sleep(300); // the burst's background veth deletes are part of it
  const w = await loopWindow(t);
  out.burstMaxMs.push(w.maxMs);
  out.burstP99Ms.push(w.p99Ms);
}

function report(t: Target, f: Figures): void {
  const mp = (xs: number[]) => `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)}`;
  const rss = Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${t.d.proc.pid}/status`, 'utf8'))![1]) / 1024);
  console.log(`${t.name} (daemon RSS ${rss} MiB)`);
  console.log(`  burst of ${BURST} pods: event-loop delay max ${mp(f.burstMaxMs)} ms, p99 ${mp(f.burstP99Ms)} ms, wall ${mp(f.burstWallMs)} ms  (median / p95 of ${f.burstMaxMs.length})`);
  console.log(`  one pod (host port): RunPodSandbox ${mp(f.run)}, StopPodSandbox ${mp(f.stop)}, RemovePodSandbox ${mp(f.remove)} ms  (median / p95 of ${f.run.length})`);
}

const work = await mkdtemp(join(tmpdir(), 'crib-pod-burst-'));
const targets: Target[] = [];
try {
  const start = async (name: string, daemonModule: string): Promise<void> => {
    const { startDaemon: start } = (await import(daemonModule)) as { startDaemon: typeof startDaemon };
    const probeFile = join(work, `loop-${targets.length}.json`);
    rmSync(probeFile, { force: true });
    const d = await start({ logLevel: 'warn', env: probeEnv({ delayFile: probeFile }) });
    targets.push({ name, d, probeFile, seq: 0 });
  };
  if (BASE) await start(`A: ${BASE}`, join(BASE, 'test-support/daemon.ts'));
  await start(BASE ? 'B: this checkout' : 'crib', '../test-support/daemon.js');
  for (const t of targets) await round(t, figures()); // warm-up
  const out = new Map(targets.map((t) => [t, figures()]));
  for (let r = 0; r < N; r++) {
    const order = r % 2 ? [...targets].reverse() : targets;
    for (const t of order) await round(t, out.get(t)!);
  }
  for (const t of targets) report(t, out.get(t)!);
} finally {
  for (const t of targets) await t.d.cleanup().catch((err: unknown) => console.error('cleanup:', err));
  await rm(work, { recursive: true, force: true });
}
