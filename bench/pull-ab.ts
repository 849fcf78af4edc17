// Benchmark (not a test): cold PullImage, A/B between two builds. bench/pull.ts compares crib with
// containerd and the floor, one pull of each after 15 s of quiet; a change to crib's pull moves
// its time by less than the machine's noise there. Here one daemon of each build runs side by
// side, each round pulls the same image into both (alternating which goes first) and removes it,
// then waits BENCH_IDLE_MS; each pull's wall time and the CPU the daemon's process spent on it
// (all its threads: /proc/<pid>/stat), and its main thread's, are recorded. CPU is the steadier
// figure on a busy machine, but not on an image of thousands of small files (realistic): there the
// daemon started first spent 50-75% more CPU per pull than the second with the same build and
// settings in both (1740 / 990 ms, N=6), nearly all of it in the kernel, where a pull's profile
// is led by ext4 looking for free inodes past the ones the previous round's removal freed (perf:
// find_get_block_common, recently_deleted). Compare such an image's figures with the builds in
// both orders.
//   npx tsx bench/pull-ab.ts   (BENCH_BASE=/path/to/another/checkout, built; BENCH_N=6 rounds;
//                               BENCH_IMAGE=synthetic or realistic; BENCH_MB=100; BENCH_IDLE_MS=15000)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { startDaemon, TestDaemon } from '../test-support/daemon.js';
import { pushImage } from '../test-support/image-builder.js';
import { startRegistry } from '../test-support/registry.js';
import { buildBenchImage } from './pull-images.js';

const N = Number(process.env.BENCH_N ?? 6);
const BASE = process.env.BENCH_BASE;
const IMAGE = process.env.BENCH_IMAGE ?? 'synthetic';
const TOTAL_MB = Number(process.env.BENCH_MB ?? 100);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 15_000);

/**
 * CPU milliseconds used so far: the process's, all its threads (the exited ones included), or,
 * with `thread`, one thread's (the main thread's id is the pid).
 */
function cpuMs(pid: number, thread?: number): number {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface Target { name: string; d: TestDaemon; wall: number[]; cpu: number[]; main: number[] }

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  const registry = await startRegistry();
  const targets: Target[] = [];
  try {
    console.log(`building the ${IMAGE} image (${TOTAL_MB} MB) ...`);
    const image = await buildBenchImage(IMAGE, TOTAL_MB);
    await pushImage(registry, `bench/ab-${IMAGE}`, 'v1', image);
    const ref = `${registry.host}/bench/ab-${IMAGE}:v1`;
    const start = async (name: string, daemonModule: string): Promise<void> => {
      const { startDaemon: start } = (await import(daemonModule)) as { startDaemon: typeof startDaemon };
      const d = await start({ logLevel: 'warn', toml: '[image]\nmax_concurrent_downloads = 3\n' });
      targets.push({ name, d, wall: [], cpu: [], main: [] });
    };
    if (BASE) await start(`A: ${BASE}`, join(BASE, 'test-support/daemon.ts'));
    await start(BASE ? 'B: this checkout' : 'crib', '../test-support/daemon.js');
    // One unrecorded pull each: the first pull after start also loads the registry client.
    for (const t of targets) {
      await t.d.cri.image.PullImage({ image: { image: ref } });
      await t.d.cri.image.RemoveImage({ image: { image: ref } });
    }
    for (let r = 0; r < N; r++) {
      await sleep(IDLE_MS);
      const order = r % 2 ? [...targets].reverse() : targets;
      for (const t of order) {
        const pid = t.d.proc.pid!;
        const cpu0 = cpuMs(pid);
        const main0 = cpuMs(pid, pid);
        const t0 = process.hrtime.bigint();
        await t.d.cri.image.PullImage({ image: { image: ref } });
        t.wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
        t.cpu.push(cpuMs(pid) - cpu0);
        t.main.push(cpuMs(pid, pid) - main0);
        await t.d.cri.image.RemoveImage({ image: { image: ref } });
      }
    }
    const mb = image.layers.reduce((n, l) => n + l.size, 0) / 1e6;
    console.log(`${IMAGE} image, ${mb.toFixed(1)} MB in ${image.layers.length} layers; N=${N} rounds, each after ${IDLE_MS / 1000} s of quiet, ` +
      'alternating which daemon pulls first; median / p95');
    console.log(['per pull'.padEnd(16), ...targets.map((t) => t.name.padStart(36))].join(''));
    console.log(['wall ms'.padEnd(16), ...targets.map((t) => `${pct(t.wall, 0.5).toFixed(0)} / ${pct(t.wall, 0.95).toFixed(0)}`.padStart(36))].join(''));
    console.log(['daemon CPU ms'.padEnd(16), ...targets.map((t) => `${pct(t.cpu, 0.5).toFixed(0)} / ${pct(t.cpu, 0.95).toFixed(0)}`.padStart(36))].join(''));
    console.log(['main thread ms'.padEnd(16), ...targets.map((t) => `${pct(t.main, 0.5).toFixed(0)} / ${pct(t.main, 0.95).toFixed(0)}`.padStart(36))].join(''));
    for (const t of targets) console.log(`  ${t.name}: wall ${t.wall.map((x) => x.toFixed(0)).join(', ')}; CPU ${t.cpu.join(', ')}; main ${t.main.join(', ')}`);
  } finally {
    for (const t of targets) await t.d.cleanup().catch((err: unknown) => console.error('cleanup:', err));
    await registry.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
