// Benchmark (not a test): pull a ~100 MB, 5-layer image from a loopback docker-registry through
// the CRI, and print the time beside the floor measured in the same run: the same blobs fetched
// with plain HTTP GETs and unpacked by `tar -x` (3 at a time, as crib's default). When Debian's
// containerd is installed, the same PullImage against its CRI plugin is printed too.
//   npm run bench:pull            (BENCH_RUNS=3 by default; BENCH_MB to change the size)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startDaemon } from '../test-support/daemon.js';
import { containerdAvailable, startContainerd } from '../test-support/containerd.js';
import { buildImage, layerFromEntries, pushImage, type BuiltImage, type TarEntry } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';
import type { CriClient } from '../test-support/cri-client.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TOTAL_MB = Number(process.env.BENCH_MB ?? 100);
const LAYERS = 5;

/** A layer of many files of random (incompressible) bytes, like a real image's binaries. */
async function makeLayer(n: number, mb: number): Promise<Awaited<ReturnType<typeof layerFromEntries>>> {
  const entries: TarEntry[] = [{ type: 'dir', path: `layer${n}`, mode: 0o755 }];
  const fileSize = 256 * 1024;
  for (let i = 0; i < (mb * 1024 * 1024) / fileSize; i++) {
    entries.push({ type: 'file', path: `layer${n}/f${i}`, content: randomBytes(fileSize), mode: 0o644 });
  }
  return layerFromEntries(entries, 'gzip');
}

async function floorOnce(registry: TestRegistry, repo: string, image: BuiltImage): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-bench-floor-'));
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < image.layers.length) {
      const layer = image.layers[next++]!;
      const target = join(dir, layer.digest.slice(7));
      await mkdir(target);
      const res = await request(`${registry.url}/v2/${repo}/blobs/${layer.digest}`);
      const tar = spawn('tar', ['-xzf', '-', '-C', target], { stdio: ['pipe', 'ignore', 'inherit'] });
      const done = new Promise<void>((resolve, reject) =>
        tar.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`)))),
      );
      for await (const chunk of res.body) if (!tar.stdin!.write(chunk)) await new Promise((r) => tar.stdin!.once('drain', r));
      tar.stdin!.end();
      await done;
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await rm(dir, { recursive: true, force: true });
  return secs;
}

async function pullOnce(cri: CriClient, ref: string): Promise<number> {
  const started = process.hrtime.bigint();
  await cri.image.PullImage({ image: { image: ref } });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await cri.image.RemoveImage({ image: { image: ref } });
  return secs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const registry = await startRegistry();
  const cleanups: (() => Promise<unknown>)[] = [() => registry.stop()];
  try {
    console.log(`building a ${TOTAL_MB} MB, ${LAYERS}-layer image ...`);
    const layers = [];
    for (let i = 0; i < LAYERS; i++) layers.push(await makeLayer(i, TOTAL_MB / LAYERS));
    const image = buildImage({ layers });
    const repo = 'bench/pull';
    await pushImage(registry, repo, 'v1', image);
    const ref = `${registry.host}/${repo}:v1`;
    const bytes = image.layers.reduce((n, l) => n + l.size, 0) + image.config.size;
    const mb = bytes / 1e6;

    const daemon = await startDaemon({ toml: '[image]\nmax_concurrent_downloads = 3\n' });
    cleanups.unshift(() => daemon.cleanup());
    const rows: { name: string; secs: number }[] = [];
    const floor: number[] = [];
    const crib: number[] = [];
    const ctr: number[] = [];
    let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
    if (containerdAvailable()) {
      containerd = await startContainerd({ insecureRegistries: [registry.host] });
      cleanups.unshift(() => containerd!.stop());
    }
    // Interleaved, so machine noise hits every contender alike.
    for (let i = 0; i < RUNS; i++) {
      floor.push(await floorOnce(registry, repo, image));
      crib.push(await pullOnce(daemon.cri, ref));
      if (containerd) ctr.push(await pullOnce(containerd.cri, ref));
    }
    rows.push({ name: 'floor (HTTP GET | tar -xz, 3 parallel)', secs: median(floor) });
    rows.push({ name: 'crib PullImage', secs: median(crib) });
    if (containerd) rows.push({ name: 'containerd 1.6 PullImage', secs: median(ctr) });
    console.log(`\nimage: ${mb.toFixed(1)} MB compressed in ${LAYERS} layers; median of ${RUNS} runs\n`);
    for (const r of rows) {
      console.log(`${r.name.padEnd(42)} ${r.secs.toFixed(3)} s   ${(mb / r.secs).toFixed(1).padStart(7)} MB/s   ${(r.secs / rows[0]!.secs).toFixed(2)}x floor`);
    }
    if (containerd) console.log(`\ncrib / containerd: ${(median(crib) / median(ctr)).toFixed(2)}x the time`);
    if (!containerd) console.log('\n(containerd is not installed: apt-get install containerd to compare)');
    console.log(`goal: crib within 1.2x of the floor — ${median(crib) / median(floor) <= 1.2 ? 'met' : 'NOT met'}`);
  } finally {
    for (const c of cleanups) await c().catch((err: unknown) => console.error('cleanup:', err));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
