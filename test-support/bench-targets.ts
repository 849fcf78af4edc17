// The runtimes a pod-level benchmark compares, set up the same way for every benchmark: a
// loopback registry with busybox, crib, and Debian's containerd (CRI plugin, runc, CNI bridge)
// when it is installed. Each target is measured in turn, in one run, and everything is removed
// afterwards.
import type { CriClient } from './cri-client.js';
import { containerdAvailable, startContainerdForPods } from './containerd.js';
import { startDaemon } from './daemon.js';
import { pushBusybox } from './image-builder.js';
import { startRegistry } from './registry.js';

export interface BenchTarget {
  name: string;
  cri: CriClient;
  /** The busybox image, already pulled. */
  image: string;
  daemonPid: number;
  /** Command-line word and marker identifying this target's per-container helper processes. */
  helper: { name: string; marker: string };
}

export async function runOnBenchTargets<R>(
  containerdNet: { bridge: string; subnet: string },
  measure: (t: BenchTarget) => Promise<R>,
): Promise<R[]> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const results: R[] = [];
  try {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    await pushBusybox(registry, 'library/busybox', 'latest');
    const image = `${registry.host}/library/busybox:latest`;

    const d = await startDaemon({ logLevel: 'warn' });
    cleanups.unshift(() => d.cleanup());
    await d.cri.image.PullImage({ image: { image } });
    results.push(await measure({ name: 'crib', cri: d.cri, image, daemonPid: d.proc.pid!, helper: { name: 'crib-monitor', marker: d.dir } }));

    if (containerdAvailable()) {
      const ctd = await startContainerdForPods(registry, { ...containerdNet, images: [image] });
      cleanups.unshift(() => ctd.stop());
      results.push(await measure({
        name: 'containerd 1.6 + runc', cri: ctd.cri, image, daemonPid: ctd.proc.pid!,
        helper: { name: 'containerd-shim', marker: ctd.socket.replace(/\/containerd.sock$/, '') },
      }));
    } else {
      console.log('(containerd is not installed: apt-get install containerd containernetworking-plugins to compare)');
    }
    return results;
  } finally {
    for (const c of cleanups) await c().catch((err: unknown) => console.error('cleanup:', err));
  }
}
