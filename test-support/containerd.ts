// Debian's containerd with its CRI plugin, started privately (own root, state, socket) as the
// reference runtime for benchmarks. Registries on 127.0.0.1 are reached over plain http through
// the CRI plugin's mirror config.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criClient, type CriClient } from './cri-client.js';
import { removeNetwork, waitFor } from './daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from './image-builder.js';
import type { TestRegistry } from './registry.js';

export interface TestContainerd {
  socket: string;
  cri: CriClient;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export function containerdAvailable(): boolean {
  return spawnSync('containerd', ['--version']).status === 0;
}

export async function startContainerd(opts: { insecureRegistries?: string[]; cniConfDir?: string; sandboxImage?: string } = {}): Promise<TestContainerd> {
  const dir = await mkdtemp(join(tmpdir(), 'crib-ref-containerd-'));
  const socket = join(dir, 'containerd.sock');
  const mirrors = (opts.insecureRegistries ?? [])
    .map((h) => `[plugins."io.containerd.grpc.v1.cri".registry.mirrors."${h}"]\n  endpoint = ["http://${h}"]\n`)
    .join('');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n` +
      `[ttrpc]\n  address = "${socket}.ttrpc"\n[debug]\n  level = "warn"\n` +
      `[plugins."io.containerd.grpc.v1.cri"]\n  disable_apparmor = true\n  restrict_oom_score_adj = true\n` +
      (opts.sandboxImage ? `  sandbox_image = "${opts.sandboxImage}"\n` : '') +
      `[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n  conf_dir = "${opts.cniConfDir ?? `${dir}/cni`}"\n` +
      mirrors,
  );
  const proc = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const cri = criClient(socket);
  try {
    await waitFor('containerd CRI', async () => {
      if (proc.exitCode !== null) throw new Error(`containerd exited: ${log.slice(-2000)}`);
      if (!existsSync(socket)) return false;
      await cri.runtime.Version({}, { deadline: Date.now() + 1000 });
      return true;
    }, 30_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return {
    socket,
    cri,
    proc,
    stop: async () => {
      cri.close();
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      // containerd leaves overlay mounts for unpacked snapshots only while containers run; none here.
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * containerd set up to run pods, as a benchmark reference: a stand-in pause image (busybox that
 * sleeps) pushed to `registry`, a CNI bridge network of its own, and `images` pulled.
 * stop() removes it all.
 */
export async function startContainerdForPods(
  registry: TestRegistry,
  opts: { bridge: string; subnet: string; images: string[] },
): Promise<TestContainerd> {
  const pause = buildImage({ layers: [await busyboxRootfsLayer()], config: { Entrypoint: ['/bin/sleep', '2147483647'] } });
  await pushImage(registry, 'pause', '3.9', pause);
  const cniDir = await mkdtemp(join(tmpdir(), 'crib-ref-cni-'));
  await writeFile(join(cniDir, '10-ref.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: `ref-${opts.bridge}`,
    plugins: [
      { type: 'bridge', bridge: opts.bridge, isGateway: true, ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: opts.subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }));
  const sandboxImage = `${registry.host}/pause:3.9`;
  const ctd = await startContainerd({ insecureRegistries: [registry.host], cniConfDir: cniDir, sandboxImage });
  for (const image of [...opts.images, sandboxImage]) await ctd.cri.image.PullImage({ image: { image } });
  return {
    ...ctd,
    stop: async () => {
      await ctd.stop();
      await removeNetwork(opts.bridge, 'none');
      await rm(cniDir, { recursive: true, force: true });
    },
  };
}
