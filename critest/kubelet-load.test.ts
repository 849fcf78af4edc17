// kubelet's steady load on a full node: 250 pods, each with one running container, and for a
// minute the calls kubelet makes while nothing changes. kubelet acts on every failed call: a failed
// relist marks the runtime unhealthy (and the node NotReady once it persists), a failed probe
// marks a healthy pod unready or restarts its container. So the bar is zero failed calls.
//   relist       ListPodSandbox + ListContainers every 1 s (PLEG; sequential, like wait.Until)
//   stats        ListContainerStats + ListPodSandboxStats every 10 s (the summary API)
//   exec probes  one ExecSync `true` per pod every 10 s, spread over the period
// All three run at once. Afterwards every pod is stopped and removed and the node must hold
// nothing of them. p50/p99 per RPC are printed; on this shared 2-core machine they are noise,
// so only failures are asserted.
// CRIB_KUBELET_LOAD_PODS and CRIB_KUBELET_LOAD_SECONDS scale it.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { checkNodeTruth } from '../test-support/node-truth.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

const PODS = Number(process.env.CRIB_KUBELET_LOAD_PODS ?? 250);
const SECONDS = Number(process.env.CRIB_KUBELET_LOAD_SECONDS ?? 60);
/** Pods kubelet's pod workers start at once when a node fills up. */
const START_CONCURRENCY = 8;
/** An exec probe's timeoutSeconds. kubelet's default is 1 s; on this shared 2-core machine a
 * process start can take longer than that, which is latency, not the failure this test hunts. */
const PROBE_TIMEOUT_S = 10;

/**
 * Latency bounds, each well above what the daemon answers in on this 2-core machine at 250 pods
 * beside a CI run (load 4-5: ExecSync p99 0.6-1.5 s, relist p99 0.25-0.7 s, the slowest stats
 * listing 1.6-4.1 s) and well below what it answered in while every ExecSync forked the daemon
 * (ExecSync p99 15-21 s, the stats listings 35-58 s): a probe answered after its 10 s timeout
 * has failed, and kubelet's summary API waits for the stats.
 */
const BOUND_MS = { ExecSync: 8000, ListPodSandbox: 8000, ListContainers: 8000, ListContainerStats: 20_000, ListPodSandboxStats: 20_000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Latencies and failures per RPC. */
class Calls {
  readonly latencies = new Map<string, number[]>();
  readonly failures: string[] = [];

  async time<T>(rpc: string, call: () => Promise<T>): Promise<T | undefined> {
    const t0 = performance.now();
    try {
      return await call();
    } catch (err) {
      const e = err as { code?: number; details?: string; message?: string };
      this.failures.push(`${rpc}: code ${e.code}: ${e.details ?? e.message}`);
      return undefined;
    } finally {
      const l = this.latencies.get(rpc) ?? [];
      l.push(performance.now() - t0);
      this.latencies.set(rpc, l);
    }
  }

  count(): number {
    let n = 0;
    for (const l of this.latencies.values()) n += l.length;
    return n;
  }

  /** The latency (ms) below which fraction `p` of `rpc`'s calls answered (1: the slowest). */
  quantile(rpc: string, p: number): number {
    const s = [...(this.latencies.get(rpc) ?? [])].sort((a, b) => a - b);
    return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
  }

  report(): string {
    const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
    const rows = [...this.latencies].map(([rpc, l]) => {
      const s = [...l].sort((a, b) => a - b);
      return `  ${rpc.padEnd(20)} ${String(s.length).padStart(6)} calls  p50 ${pct(s, 0.5).toFixed(1).padStart(8)} ms  p99 ${pct(s, 0.99).toFixed(1).padStart(8)} ms  max ${s.at(-1)!.toFixed(1).padStart(8)} ms`;
    });
    return rows.join('\n');
  }
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

describe(`kubelet's steady load: ${PODS} pods, ${SECONDS} s of relist, stats and exec probes`, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let image: string;
  const pods: { podSandboxId: string; containerId: string }[] = [];

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-kubelet-load-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    // Debug logs of 30 calls a second would be most of the daemon's work.
    d = await startDaemon({ logLevel: 'info' });
    await d.cri.image.PullImage({ image: { image } });
  }, 120_000);

  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  }, 300_000);

  it('answers every call, then removes every pod and leaves nothing', async () => {
    const podConfig = podConfigFactory('kubelet-load', logDir);
    const t0 = performance.now();
    await pool(Array.from({ length: PODS }, (_, i) => i), START_CONCURRENCY, async (i) => {
      const config = podConfig(`load-${i}`);
      const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config });
      const { containerId } = await d.cri.runtime.CreateContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '100000'] },
      });
      await d.cri.runtime.StartContainer({ containerId });
      pods.push({ podSandboxId, containerId });
    });
    const startS = (performance.now() - t0) / 1000;
    console.log(`started ${PODS} pods with a container each in ${startS.toFixed(1)} s (${START_CONCURRENCY} at a time)`);

    const calls = new Calls();
    const cpu0 = cpuSeconds(d.proc.pid!);
    const end = performance.now() + SECONDS * 1000;
    const probed = new Set<string>();
    const wrongExits: string[] = [];

    const relist = async () => {
      while (performance.now() < end) {
        const tick = performance.now();
        const sandboxes = await calls.time('ListPodSandbox', () => d.cri.runtime.ListPodSandbox({}));
        const containers = await calls.time('ListContainers', () => d.cri.runtime.ListContainers({}));
        // A relist that does not see every pod and container running would make kubelet act.
        if (sandboxes && sandboxes.items.filter((p: { state: string }) => p.state === 'SANDBOX_READY').length !== PODS) {
          calls.failures.push(`ListPodSandbox: ${sandboxes.items.length} pods listed, not ${PODS} ready`);
        }
        if (containers && containers.containers.filter((c: { state: string }) => c.state === 'CONTAINER_RUNNING').length !== PODS) {
          calls.failures.push(`ListContainers: ${containers.containers.length} containers listed, not ${PODS} running`);
        }
        await sleep(Math.max(0, tick + 1000 - performance.now()));
      }
    };
    const stats = async () => {
      while (performance.now() < end) {
        const tick = performance.now();
        const cs = await calls.time('ListContainerStats', () => d.cri.runtime.ListContainerStats({}));
        const ps = await calls.time('ListPodSandboxStats', () => d.cri.runtime.ListPodSandboxStats({}));
        if (cs && cs.stats.length !== PODS) calls.failures.push(`ListContainerStats: ${cs.stats.length} entries, not ${PODS}`);
        if (ps && ps.stats.length !== PODS) calls.failures.push(`ListPodSandboxStats: ${ps.stats.length} entries, not ${PODS}`);
        await sleep(Math.max(0, tick + 10_000 - performance.now()));
      }
    };
    // Pod i probes at i/PODS of each 10 s period, as kubelet's probe workers start spread out.
    const probe = async (containerId: string, offsetMs: number) => {
      await sleep(offsetMs);
      while (performance.now() < end) {
        const tick = performance.now();
        const r = await calls.time('ExecSync', () => d.cri.runtime.ExecSync({ containerId, cmd: ['true'], timeout: String(PROBE_TIMEOUT_S) }));
        if (r) {
          probed.add(containerId);
          if (r.exitCode !== 0 || r.stdout.length || r.stderr.length) {
            wrongExits.push(`${containerId.slice(0, 12)}: exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.toString())}, stderr ${JSON.stringify(r.stderr.toString())}`);
          }
        }
        await sleep(Math.max(0, tick + 10_000 - performance.now()));
      }
    };
    await Promise.all([relist(), stats(), ...pods.map((p, i) => probe(p.containerId, (i * 10_000) / PODS))]);

    const cpu = cpuSeconds(d.proc.pid!);
    console.log(`${SECONDS} s of kubelet load on ${PODS} pods: ${calls.count()} calls, ${calls.failures.length} failed, ` +
      `${wrongExits.length} probes with a wrong result; CPU: daemon ${(cpu.self - cpu0.self).toFixed(1)} s, ` +
      `its exec helpers ${(cpu.children - cpu0.children).toFixed(1)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n${calls.report()}` +
      (calls.failures.length ? `\nfailures (first 20):\n  ${calls.failures.slice(0, 20).join('\n  ')}` : '') +
      (wrongExits.length ? `\nwrong results (first 20):\n  ${wrongExits.slice(0, 20).join('\n  ')}` : ''));
    expect(calls.failures).toEqual([]);
    expect(wrongExits).toEqual([]);
    // How often each pod was probed depends on how fast the calls are (a probe worker waits for
    // its call, as kubelet's does): that is latency. That every pod was probed is not.
    expect(probed.size).toBe(PODS);

    const t1 = performance.now();
    await pool(pods, START_CONCURRENCY, async ({ podSandboxId }) => {
      await d.cri.runtime.StopPodSandbox({ podSandboxId });
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    });
    console.log(`stopped and removed ${PODS} pods in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
    expect((await d.cri.runtime.ListContainers({})).containers).toEqual([]);
    // Nothing reported, so nothing may be on the node: no record, dir, mount, process, veth,
    // address, rule or cgroup of any of them.
    expect(await checkNodeTruth(d, { pods: pods.map((p) => p.podSandboxId), containers: pods.map((p) => p.containerId) })).toEqual([]);
    // No call waits behind another for long: p99 for the frequent calls, the slowest listing for
    // the stats (a handful of calls).
    const over = Object.entries(BOUND_MS).flatMap(([rpc, bound]) => {
      const q = calls.quantile(rpc, rpc.endsWith('Stats') ? 1 : 0.99);
      return q > bound ? [`${rpc}: ${q.toFixed(0)} ms over its bound of ${bound} ms`] : [];
    });
    expect(over).toEqual([]);
  }, 900_000);
});

/** CPU seconds of a process and of its children it has waited for (the exec-sync helpers). */
function cpuSeconds(pid: number): { self: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // Fields 14-17 of stat (utime stime cutime cstime), counted from field 3 here, in clock ticks.
  return { self: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}
