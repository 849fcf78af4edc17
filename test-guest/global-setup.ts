// Once per guest tier run, inside the guest: check that this is the cgroup v2 guest, then start
// what every suite shares — a loopback registry holding the busybox test image, and one crib
// daemon that has pulled it. In the emulated guest each daemon start costs tens of seconds, so
// the files share one (each cleans up the pods it makes; each checks for its own leftovers).
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

/** What the suites get through inject(). */
export interface GuestContext {
  socket: string;
  image: string;
  registryHost: string;
  podCidr: string;
  bridge: string;
  logDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    guest: GuestContext;
  }
}

/** Controllers the suites exercise; all must be enabled at the root, none may be missing. */
export const REQUIRED_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'];

/** Throws unless this process runs in the guest test-support/guest/guest.sh boots. */
export function assertInGuest(): void {
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  if (!cmdline.includes('crib.run=') || !existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    throw new Error('the test-guest suites run only inside the cgroup v2 test guest: use `npm run test:cgroup2`');
  }
  const enabled = readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').trim().split(/\s+/);
  const missing = REQUIRED_CONTROLLERS.filter((c) => !enabled.includes(c));
  if (missing.length > 0) throw new Error(`the guest's root cgroup does not enable ${missing.join(', ')}`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  assertInGuest();
  let registry: TestRegistry | undefined;
  let daemon: TestDaemon | undefined;
  const logDir = await mkdtemp(join(tmpdir(), 'crib-guest-logs-'));
  const teardown = async () => {
    // The daemon's log helps explain a failure in CI: keep it next to the tier's report.
    const out = process.env.CRIB_GUEST_OUT;
    if (daemon && out) await writeFile(join(out, 'daemon.log'), daemon.output()).catch(() => undefined);
    await daemon?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
  };
  // Each step's time goes to the tier's output: in the emulated guest they are a visible share
  // of the tier's budget.
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const v = await fn();
    console.log(`[guest setup] ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return v;
  };
  try {
    registry = await timed('registry started', () => startRegistry({ readyTimeoutMs: 180_000 }));
    await timed('busybox image pushed', () => pushBusybox(registry!, 'library/busybox', 'latest'));
    const image = `${registry.host}/library/busybox:latest`;
    // Loading the daemon's modules under TCG takes minutes when the host is loaded (391 s seen
    // at load 27): a slow start is not a failure of what the suites test.
    daemon = await timed('daemon started', () => startDaemon({ logLevel: 'info', startTimeoutMs: 600_000 }));
    await timed('image pulled', () => daemon!.cri.image.PullImage({ image: { image } }));
    project.provide('guest', {
      socket: daemon.socket, image, registryHost: registry.host, podCidr: daemon.podCidr, bridge: daemon.bridge, logDir,
    });
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
