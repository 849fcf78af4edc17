// What the guest suites share: a CRI client to the tier's daemon (global-setup.ts), pod and
// container configs, and the kernel's view of a container's cgroup — found from the container's
// pid in /proc, not from crib's own path computation, so a wrong path in crib shows up as a
// wrong directory here.
import { readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { resolvePodCgroupPath } from '../src/stats/cgroup-path.js';
import { criClient, type CriClient } from '../test-support/cri-client.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { waitFor } from '../test-support/daemon.js';
import { assertInGuest } from './global-setup.js';

export { waitFor };

export const CGROUP_ROOT = '/sys/fs/cgroup';
export const MiB = 1024 * 1024;

export interface Guest {
  cri: CriClient;
  image: string;
  podCidr: string;
  podConfig: (name: string, extra?: Record<string, unknown>) => Record<string, any>;
  containerConfig: (name: string, script: string, extra?: Record<string, unknown>) => Record<string, any>;
  /**
   * Remove the pods made through runPod, then their cgroup parents (kubelet's job on a node),
   * and fail if a cgroup made since guest() was called is still there — the default parent
   * /crib, shared by every pod without one, excepted.
   */
  cleanup(): Promise<void>;
  runPod(name: string, extra?: Record<string, unknown>): Promise<{ podSandboxId: string; config: Record<string, any> }>;
  /** Create and start a container running `sh -c script`; returns its id. */
  runContainer(podSandboxId: string, sandboxConfig: Record<string, any>, name: string, script: string,
    extra?: Record<string, unknown>): Promise<string>;
  exec(containerId: string, script: string, timeoutS?: number): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** ContainerStatus.status once the container has exited. */
  waitExited(containerId: string, timeoutMs?: number): Promise<Record<string, any>>;
  /** The container's cgroup directory, from its init's /proc/<pid>/cgroup. */
  cgroupDir(containerId: string): Promise<string>;
}

/** One per test file: call in beforeAll, cleanup() in afterAll. */
export function guest(namespace: string): Guest {
  assertInGuest();
  const ctx = inject('guest');
  const cri = criClient(ctx.socket);
  const podConfig = podConfigFactory(namespace, ctx.logDir);
  const pods: string[] = [];
  const parents = new Set<string>();
  const before = allCgroups();
  const containerConfig = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image: ctx.image },
    command: ['/bin/sh', '-c'],
    args: [script],
    logPath: `${name}.log`,
    ...extra,
  });
  const g: Guest = {
    cri, image: ctx.image, podCidr: ctx.podCidr, podConfig, containerConfig,
    async cleanup() {
      try {
        for (const podSandboxId of pods.splice(0)) await cri.runtime.RemovePodSandbox({ podSandboxId });
      } finally {
        cri.close();
      }
      // Deepest first; a parent some other pod still uses stays (EBUSY).
      const dirs = [...parents].flatMap((p) => p.split('/').slice(1).map((_, i, a) => `/${a.slice(0, i + 1).join('/')}`));
      for (const d of [...new Set(dirs)].sort((a, b) => b.length - a.length)) {
        if (!before.includes(d)) try { rmdirSync(join(CGROUP_ROOT, d)); } catch { /* gone, or in use */ }
      }
      const left = allCgroups().filter((c) => !before.includes(c) && c !== '/crib');
      if (left.length > 0) throw new Error(`cgroups left behind: ${left.join(', ')}`);
    },
    async runPod(name, extra = {}) {
      const config = podConfig(name, extra);
      const parent = resolvePodCgroupPath((config.linux as { cgroupParent?: string } | undefined)?.cgroupParent);
      if (parent) parents.add(parent);
      const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
      pods.push(podSandboxId);
      return { podSandboxId, config };
    },
    async runContainer(podSandboxId, sandboxConfig, name, script, extra = {}) {
      const { containerId } = await cri.runtime.CreateContainer({
        podSandboxId, config: containerConfig(name, script, extra), sandboxConfig,
      });
      await cri.runtime.StartContainer({ containerId });
      return containerId;
    },
    async exec(containerId, script, timeoutS = 60) {
      const r = await cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', script], timeout: String(timeoutS) });
      return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    },
    async waitExited(containerId, timeoutMs = 120_000) {
      return waitFor(`container ${containerId} to exit`, async () => {
        const { status } = await cri.runtime.ContainerStatus({ containerId });
        return status.state === 'CONTAINER_EXITED' ? status : undefined;
      }, timeoutMs);
    },
    async cgroupDir(containerId) {
      const { info } = await cri.runtime.ContainerStatus({ containerId, verbose: true });
      const pid = JSON.parse(info.info).pid as number;
      return cgroupDirOfPid(pid);
    },
  };
  return g;
}

/** /sys/fs/cgroup/<path> of a process, from its "0::<path>" line. */
export function cgroupDirOfPid(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 line`);
  return join(CGROUP_ROOT, line.slice(3));
}

/** A cgroup file's content, trimmed. */
export function cgroupFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

/** "key value" lines (memory.events, cpu.stat) as numbers. */
export function flatKeyed(dir: string, file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of cgroupFile(dir, file).split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Every cgroup directory below root (paths relative to it), for leftover checks. */
export function allCgroups(root = CGROUP_ROOT): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      out.push(`${rel}/${e.name}`);
      walk(`${rel}/${e.name}`);
    }
  };
  walk('');
  return out.sort();
}

