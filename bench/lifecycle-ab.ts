// The A/B harness of the lifecycle benchmarks (bench/create-ab.ts, bench/remove-ab.ts): one daemon
// of this checkout and, with BENCH_BASE=/path/to/another/checkout (built), one of that checkout
// beside it; both pull busybox from one loopback registry, run WARMUP unrecorded rounds, then
// BENCH_N (default 20) recorded rounds alternating which daemon goes first, so a loaded machine
// weighs on both alike; prints each operation's median / p95 per daemon.
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry } from '../test-support/registry.js';

const WARMUP = 3;

/** Times one operation of a round: runs it, and records its milliseconds when the round counts. */
export type Timer<Op extends string> = <T>(op: Op, call: () => Promise<T>) => Promise<T>;

export interface LifecycleRound<Op extends string> {
  /** The operations reported, in the order printed. */
  ops: readonly Op[];
  /** A line said above the table (what was measured and how). */
  title: string;
  /** One round on one daemon: `time` wraps each call to report; `record` says whether it counts. */
  round(d: TestDaemon, image: string, n: number, time: Timer<Op>, record: (op: Op, ms: number) => void): Promise<void>;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

export async function runLifecycleAB<Op extends string>(bench: LifecycleRound<Op>): Promise<void> {
  const N = Number(process.env.BENCH_N ?? 20);
  const BASE = process.env.BENCH_BASE;
  interface Target { name: string; d: TestDaemon; times: Record<Op, number[]> }
  let seq = 0;
  const round = async (t: Target, image: string, counts: boolean): Promise<void> => {
    const record = (op: Op, ms: number) => { if (counts) t.times[op].push(ms); };
    const time: Timer<Op> = async (op, call) => {
      const t0 = process.hrtime.bigint();
      const r = await call();
      record(op, Number(process.hrtime.bigint() - t0) / 1e6);
      return r;
    };
    await bench.round(t.d, image, seq++, time, record);
  };

  const registry = await startRegistry();
  const targets: Target[] = [];
  try {
    await pushBusybox(registry, 'library/busybox', 'latest');
    const image = `${registry.host}/library/busybox:latest`;
    const start = async (name: string, daemonModule: string): Promise<void> => {
      const { startDaemon: start } = (await import(daemonModule)) as { startDaemon: typeof startDaemon };
      const d = await start({ logLevel: 'warn' });
      await d.cri.image.PullImage({ image: { image } });
      targets.push({ name, d, times: Object.fromEntries(bench.ops.map((op) => [op, [] as number[]])) as Record<Op, number[]> });
    };
    if (BASE) await start(`A: ${BASE}`, join(BASE, 'test-support/daemon.ts'));
    await start(BASE ? 'B: this checkout' : 'crib', '../test-support/daemon.js');
    for (let i = 0; i < WARMUP; i++) for (const t of targets) await round(t, image, false);
    for (let r = 0; r < N; r++) {
      const order = r % 2 ? [...targets].reverse() : targets;
      for (const t of order) await round(t, image, true);
    }
    console.log(`N=${N} rounds, alternating; ${bench.title}; median / p95 ms`);
    console.log(['operation'.padEnd(20), ...targets.map((t) => t.name.padStart(30))].join(''));
    for (const op of bench.ops) {
      console.log([op.padEnd(20), ...targets.map((t) => `${pct(t.times[op], 0.5).toFixed(2)} / ${pct(t.times[op], 0.95).toFixed(2)}`.padStart(30))].join(''));
    }
  } finally {
    for (const t of targets) await t.d.cleanup().catch((err: unknown) => console.error('cleanup:', err));
    await registry.stop();
  }
}
