// Benchmark (not a test): the daemon's own memory, A/B between two builds, rounds alternated so a
// loaded machine weighs on both alike (issue 14: 60 MiB idle, 80 MiB with 100 pods).
//   npx tsx bench/daemon-memory.ts [CLI_A] [CLI_B]
//   (default A = /work/main/dist/cli.js, B = this checkout's dist/cli.js; BENCH_N rounds, default 10;
//    BENCH_PODS pods per round, default 20; BENCH_A_NODE_ARGS / BENCH_B_NODE_ARGS: node flags
//    before the CLI, e.g. V8 flags NODE_OPTIONS does not take; BENCH_A_NODE_OPTIONS likewise;
//    BENCH_A_ENV / BENCH_B_ENV: "NAME=value ..." more environment for that build's daemon)
// Per round and build: a fresh daemon, idle SETTLE_MS after it first answers (VmRSS, and PSS from
// smaps_rollup, which shares the node binary's pages with other node processes); then a pull of
// busybox (and a second image, so the image store has records to order) and BENCH_PODS pods
// started and removed, and the same figures once it has been idle again for SETTLE_MS; then with
// BENCH_PODS pods running; then a new daemon on the same state with those pods still running (an
// upgrade's restart on a busy node), SETTLE_MS after it first answers.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { criClient, type CriClient } from '../test-support/cri-client.js';
import { runSleeperPod } from '../test-support/bench-targets.js';
import { removeCgroupParent, removeNetwork, waitFor } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry } from '../test-support/registry.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI_A = resolve(process.argv[2] ?? '/work/main/dist/cli.js');
const CLI_B = resolve(process.argv[3] ?? join(HERE, '../dist/cli.js'));
const N = Number(process.env.BENCH_N ?? 10);
const PODS = Number(process.env.BENCH_PODS ?? 20);
const SETTLE_MS = 3000;

interface Figures { rss: number; pss: number; anon: number }
interface Round { fresh: Figures; afterWork: Figures; withPods: Figures; restarted: Figures; workCpuS: number }

/** The process's user + system CPU seconds so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function figures(pid: number): Figures {
  const kb = (re: RegExp, text: string) => Number(re.exec(text)?.[1] ?? 0) / 1024;
  return {
    rss: kb(/VmRSS:\s+(\d+)/, readFileSync(`/proc/${pid}/status`, 'utf8')),
    pss: kb(/^Pss:\s+(\d+)/m, readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')),
    anon: kb(/RssAnon:\s+(\d+)/, readFileSync(`/proc/${pid}/status`, 'utf8')),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPods(cri: CriClient, image: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await runSleeperPod(cri, image, { name: `mem-${i}`, uid: `mem-${tag}-${i}` });
}

async function removePods(cri: CriClient): Promise<void> {
  for (const p of (await cri.runtime.ListPodSandbox({})).items) {
    await cri.runtime.StopPodSandbox({ podSandboxId: p.id });
    await cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
  }
}

async function oneRound(cli: string, nodeArgs: string[], nodeOptions: string, env: Record<string, string>, images: string[], round: number): Promise<Round> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-mem-'));
  const tag = `${process.pid % 1000}${round % 100}`.slice(-5);
  const bridge = `cribm${tag}`;
  const socket = join(dir, 'crib.sock');
  await writeFile(join(dir, 'config.toml'),
    // The default log level (info), as a node runs the daemon.
    `root = "${dir}/root"\nstate = "${dir}/state"\nlog_level = "info"\n[grpc]\naddress = "unix://${socket}"\n` +
    `[network]\nbridge = "${bridge}"\npod_cidr = "10.246.${round % 250}.0/24"\nnft_table = "${bridge}"\n`);
  /** A daemon on this round's config, answering, and SETTLE_MS idle. */
  const startDaemon = async () => {
    const proc = spawn(process.execPath, [...nodeArgs, cli, 'daemon', '--config', join(dir, 'config.toml')], {
      stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env, NODE_OPTIONS: nodeOptions },
    });
    const exited = new Promise((r) => proc.once('exit', r));
    const cri = criClient(socket);
    const stop = async () => {
      cri.close();
      proc.kill('SIGTERM');
      await exited;
    };
    try {
      await waitFor('daemon', async () => existsSync(socket) && (await cri.runtime.Version({}), true));
      await sleep(SETTLE_MS);
    } catch (err) {
      await stop();
      throw err;
    }
    return { pid: proc.pid!, cri, stop };
  };
  let d = await startDaemon();
  try {
    const fresh = figures(d.pid);
    const cpu0 = cpuSeconds(d.pid);
    for (const image of images) await d.cri.image.PullImage({ image: { image } });
    await startPods(d.cri, images[0]!, PODS, `${round}`);
    await removePods(d.cri);
    const workCpuS = cpuSeconds(d.pid) - cpu0;
    await sleep(SETTLE_MS);
    const afterWork = figures(d.pid);
    await startPods(d.cri, images[0]!, PODS, `${round}b`);
    await sleep(SETTLE_MS);
    const withPods = figures(d.pid);
    // The pods' monitors outlive the daemon: the next one finds them running.
    await d.stop();
    d = await startDaemon();
    const restarted = figures(d.pid);
    await removePods(d.cri);
    return { fresh, afterWork, withPods, restarted, workCpuS };
  } finally {
    await d.stop();
    await removeNetwork(bridge, bridge);
    await removeCgroupParent('crib');
    await rm(dir, { recursive: true, force: true });
  }
}

const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);
const envOf = (s: string | undefined) => Object.fromEntries(words(s).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  const registry = await startRegistry();
  try {
    await pushBusybox(registry, 'library/busybox', 'latest');
    await pushBusybox(registry, 'library/second', 'latest', { config: { Env: ['SECOND=1'] } });
    const images = [`${registry.host}/library/busybox:latest`, `${registry.host}/library/second:latest`];
    const builds = [
      { name: 'A', cli: CLI_A, args: words(process.env.BENCH_A_NODE_ARGS), opts: process.env.BENCH_A_NODE_OPTIONS ?? '', env: envOf(process.env.BENCH_A_ENV), rounds: [] as Round[] },
      { name: 'B', cli: CLI_B, args: words(process.env.BENCH_B_NODE_ARGS), opts: process.env.BENCH_B_NODE_OPTIONS ?? '', env: envOf(process.env.BENCH_B_ENV), rounds: [] as Round[] },
    ];
    for (let i = 0; i < N; i++) {
      for (const b of i % 2 === 0 ? builds : [...builds].reverse()) {
        const r = await oneRound(b.cli, b.args, b.opts, b.env, images, i * 2 + (b.name === 'A' ? 0 : 1));
        b.rounds.push(r);
        console.log(`round ${i} ${b.name}: fresh ${r.fresh.rss.toFixed(1)}/${r.fresh.pss.toFixed(1)}/${r.fresh.anon.toFixed(1)}, after work ${r.afterWork.rss.toFixed(1)}/${r.afterWork.pss.toFixed(1)}/${r.afterWork.anon.toFixed(1)}, ` +
          `with ${PODS} pods ${r.withPods.rss.toFixed(1)}/${r.withPods.pss.toFixed(1)}/${r.withPods.anon.toFixed(1)}, ` +
          `restarted with them ${r.restarted.rss.toFixed(1)}/${r.restarted.pss.toFixed(1)}/${r.restarted.anon.toFixed(1)} MiB (RSS/PSS/anon); daemon CPU for the pull and pods ${r.workCpuS.toFixed(2)} s`);
      }
    }
    console.log(`\nN=${N} rounds, alternated; ${PODS} pods; MiB, median / p95`);
    for (const b of builds) console.log(`${b.name} = node ${[...b.args, b.cli].join(' ')}${b.opts ? ` (NODE_OPTIONS ${b.opts})` : ''}${Object.keys(b.env).length ? ` (env ${JSON.stringify(b.env)})` : ''}`);
    for (const stage of ['fresh', 'afterWork', 'withPods', 'restarted'] as const) {
      for (const m of ['rss', 'pss', 'anon'] as const) {
        console.log(`${`${stage} ${m.toUpperCase()}`.padEnd(16)}` + builds.map((b) => {
          const xs = b.rounds.map((r) => r[stage][m]);
          return `${b.name} ${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)}`.padEnd(22);
        }).join(''));
      }
    }
    console.log('daemon CPU s, pull + pods'.padEnd(16) + builds.map((b) => {
      const xs = b.rounds.map((r) => r.workCpuS);
      return `${b.name} ${pct(xs, 0.5).toFixed(2)} / ${pct(xs, 0.95).toFixed(2)}`.padEnd(22);
    }).join(''));
  } finally {
    await registry.stop();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
