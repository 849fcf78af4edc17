// One crib daemon of a given build for the A/B benchmarks that run builds side by side
// (rpc-ab.ts, status-after-work.ts, start-scale-ab.ts): its own root, state, socket, bridge and
// pod subnet, so two daemons never share anything but the machine; and the set-up around them
// those benchmarks share (withBenchDaemons, runBench).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criClient, type CriClient } from '../test-support/cri-client.js';
import { removeCgroupParent, removeNetwork, waitFor } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry } from '../test-support/registry.js';
import { quietClientThreads } from '../test-support/bench-targets.js';

export interface BenchDaemon {
  name: string;
  cli: string;
  dir: string;
  bridge: string;
  proc: ChildProcess;
  exited: Promise<unknown>;
  cri: CriClient;
}

export interface BenchDaemonOptions {
  /** The build's name in the output (A, B…). */
  name: string;
  /** The build's dist/cli.js. */
  cli: string;
  /** 1, 2…: picks the bridge name and the pod subnet's third octet. */
  index: number;
  /** Temp dir prefix and bridge prefix (short: a bridge name has at most 15 bytes). */
  dirPrefix: string;
  bridgePrefix: string;
  /** The pod subnets' first two octets, e.g. "10.247". */
  subnet16: string;
  /** Node flags before the cli (e.g. V8 settings). */
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
}

export async function startBenchDaemon(o: BenchDaemonOptions): Promise<BenchDaemon> {
  const dir = await mkdtemp(join(tmpdir(), o.dirPrefix));
  const bridge = `${o.bridgePrefix}${process.pid % 1000}${o.index}`;
  const socket = join(dir, 'crib.sock');
  await writeFile(join(dir, 'config.toml'),
    `root = "${dir}/root"\nstate = "${dir}/state"\nlog_level = "warn"\n[grpc]\naddress = "unix://${socket}"\n` +
    `[network]\nbridge = "${bridge}"\npod_cidr = "${o.subnet16}.${o.index}.0/24"\nnft_table = "${bridge}"\n`);
  const proc = spawn(process.execPath, [...(o.nodeFlags ?? []), o.cli, 'daemon', '--config', join(dir, 'config.toml')], {
    stdio: ['ignore', 'ignore', 'inherit'], env: o.env ?? process.env,
  });
  const exited = new Promise((r) => proc.once('exit', r));
  const cri = criClient(socket);
  await waitFor('daemon', async () => existsSync(socket) && (await cri.runtime.Version({}), true));
  return { name: o.name, cli: o.cli, dir, bridge, proc, exited, cri };
}

/** Removes the daemon's pods, stops it, and removes its network and directory. */
export async function stopBenchDaemon(b: BenchDaemon): Promise<void> {
  try {
    for (const p of (await b.cri.runtime.ListPodSandbox({})).items) {
      await b.cri.runtime.StopPodSandbox({ podSandboxId: p.id });
      await b.cri.runtime.RemovePodSandbox({ podSandboxId: p.id });
    }
  } finally {
    b.cri.close();
    b.proc.kill('SIGTERM');
    await b.exited;
    await removeNetwork(b.bridge, b.bridge);
    await rm(b.dir, { recursive: true, force: true });
  }
}

export type StartBenchDaemon = (o: BenchDaemonOptions) => Promise<BenchDaemon>;

/**
 * Runs `fn` with a loopback registry holding busybox (`image`, not yet pulled) and `start`,
 * which starts a daemon; whatever happens, every daemon started is stopped after (its pods
 * removed), then crib's cgroup parent removed and the registry stopped.
 */
export async function withBenchDaemons<R>(fn: (image: string, start: StartBenchDaemon) => Promise<R>): Promise<R> {
  quietClientThreads();
  const registry = await startRegistry();
  const started: BenchDaemon[] = [];
  try {
    await pushBusybox(registry, 'library/busybox', 'latest');
    return await fn(`${registry.host}/library/busybox:latest`, async (o) => {
      const d = await startBenchDaemon(o);
      started.push(d);
      return d;
    });
  } finally {
    for (const b of started) await stopBenchDaemon(b).catch((err: unknown) => console.error(`stopping ${b.name}:`, err));
    await removeCgroupParent('crib');
    await registry.stop();
  }
}

/** kubelet's shape of a user-namespaced pod's (and its container's) linux section: container ids
 * 0-65535 on a 64 Ki block of host ids of the pod's own, block number `first + n % count` (by
 * default the `n`th of 200 from host id 100 x 64 Ki, far from any real user). */
export function usernsLinux(n: number, blocks = { first: 100, count: 200 }): Record<string, unknown> {
  const maps = [{ containerId: 0, hostId: (blocks.first + (n % blocks.count)) * 65536, length: 65536 }];
  return { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', usernsOptions: { mode: 'POD', uids: maps, gids: maps } } } };
}

/** How long each call of a pod's start took (ms). */
export interface PodStartTimes {
  run: number;
  create: number;
  start: number;
}

/**
 * Starts pod `name` (RunPodSandbox, then CreateContainer and StartContainer of a busybox
 * sleeper), `linux` its and its container's linux section; resolves with its id and each call's
 * time.
 */
export async function startTimedPod(cri: CriClient, image: string, name: string, linux: Record<string, unknown> = {}): Promise<{ podSandboxId: string; times: PodStartTimes }> {
  const config = { metadata: { name, namespace: 'bench', uid: `${process.pid}-${name}`, attempt: 0 }, linux, logDirectory: '' };
  const t0 = performance.now();
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  const t1 = performance.now();
  const { containerId } = await cri.runtime.CreateContainer({
    podSandboxId, sandboxConfig: config, config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'], linux },
  });
  const t2 = performance.now();
  await cri.runtime.StartContainer({ containerId });
  return { podSandboxId, times: { run: t1 - t0, create: t2 - t1, start: performance.now() - t2 } };
}

/** A benchmark's entry point: exits 0 once `main` resolves, 1 with its error printed if it rejects. */
export function runBench(main: () => Promise<void>): void {
  main().then(() => process.exit(0), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
