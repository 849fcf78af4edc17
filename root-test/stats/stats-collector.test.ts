// StatsCollector end to end on this host: a pod cgroup with a busy container cgroup (v1), a
// writable layer dir and a pinned network namespace with a veth eth0.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoCode } from '../../src/errors.js';
import { StatsCollector, type PodSubject } from '../../src/stats/stats-collector.js';
import { openUnder } from '../../test-support/open-files.js';

const run = promisify(execFile);
const tag = `crib-stats-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const podCg = `/${tag}`;
const containerId = 'c1';
const controllers = ['cpu', 'cpuacct', 'memory', 'pids'];
const netnsName = `crib-stats-c-${process.pid}`;
let tmp: string;
let child: ChildProcess | undefined;

async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await rmdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      if (errnoCode(err) !== 'EBUSY' || i > 200) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'crib-stats-collector-'));
  await mkdir(join(tmp, 'upper/etc'), { recursive: true });
  await writeFile(join(tmp, 'upper/etc/data'), Buffer.alloc(64 << 10, 1));
  for (const c of controllers) await mkdir(`/sys/fs/cgroup/${c}${podCg}/crib-${containerId}`, { recursive: true });
  await run('ip', ['netns', 'add', netnsName]);
  const inNs = (...args: string[]) => run('ip', ['netns', 'exec', netnsName, 'ip', ...args]);
  // Both ends inside the namespace: deleting it removes them.
  await inNs('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
  await inNs('addr', 'add', '10.254.0.1/24', 'dev', 'eth0');
  await inNs('link', 'set', 'eth0', 'up');
  await inNs('link', 'set', 'peer0', 'up');
  child = spawn('/bin/busybox', ['sh', '-c', 'read go; x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do :; done'],
    { stdio: ['pipe', 'ignore', 'ignore'] });
  for (const c of controllers) {
    await writeFile(`/sys/fs/cgroup/${c}${podCg}/crib-${containerId}/cgroup.procs`, `${child.pid}\n`);
  }
  child.stdin!.write('go\n');
  // Nobody answers 10.254.0.3, but the ARP requests for it go out of eth0 and are counted.
  await run('ip', ['netns', 'exec', netnsName, '/bin/busybox', 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.254.0.3'])
    .catch(() => undefined);
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  for (const c of controllers) {
    await rmdirRetry(`/sys/fs/cgroup/${c}${podCg}/crib-${containerId}`).catch(() => undefined);
    await rmdirRetry(`/sys/fs/cgroup/${c}${podCg}`).catch(() => undefined);
  }
  await run('ip', ['netns', 'delete', netnsName]).catch(() => undefined);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const subject = (): PodSubject => ({
  attributes: { id: 'p1', metadata: { name: 'web', uid: 'u1', namespace: 'default', attempt: 0 }, labels: {}, annotations: {} },
  cgroupParent: podCg,
  netnsPath: `/run/netns/${netnsName}`,
  containers: [{
    attributes: { id: containerId, metadata: { name: 'app', attempt: 0 }, labels: { l: '1' }, annotations: {} },
    cgroupsPath: `${podCg}/crib-${containerId}`,
    writableLayer: { dir: join(tmp, 'upper'), mountpoint: tmp },
    image: 'busybox:latest',
  }, {
    // Created but never started: no cgroup yet.
    attributes: { id: 'c2', metadata: { name: 'idle', attempt: 0 }, labels: {}, annotations: {} },
    cgroupsPath: `${podCg}/crib-c2`,
  }],
});

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('StatsCollector', () => {
  it('reports pod and container stats from the real cgroups, layer and netns', async () => {
    const collector = new StatsCollector({ minRateWindowNs: 200_000_000n });
    const first = await collector.podSandboxStats(subject());
    expect(first.linux!.containers![0]!.cpu!.usageNanoCores).toBeNull(); // no previous sample
    const s = await waitFor('rates and 15 MB charged', async () => {
      const r = await collector.podSandboxStats(subject());
      const c = r.linux!.containers![0]!;
      return c.cpu?.usageNanoCores && r.linux!.cpu?.usageNanoCores
        && BigInt(c.memory!.workingSetBytes!.value as string) > 15_000_000n ? r : undefined;
    });
    const linux = s.linux!;
    const [app, idle] = linux.containers!;
    const cores = BigInt(app!.cpu!.usageNanoCores!.value as string);
    expect(cores).toBeGreaterThan(0n);
    expect(cores).toBeLessThan(2_200_000_000n);
    // The pod cgroup holds the container: at least its usage.
    expect(BigInt(linux.cpu!.usageCoreNanoSeconds!.value as string))
      .toBeGreaterThanOrEqual(BigInt(app!.cpu!.usageCoreNanoSeconds!.value as string));
    expect(BigInt(linux.memory!.usageBytes!.value as string)).toBeGreaterThan(15_000_000n);
    expect(BigInt(linux.process!.processCount!.value as string)).toBeGreaterThanOrEqual(1n);
    expect(BigInt(app!.writableLayer!.usedBytes!.value as string)).toBeGreaterThanOrEqual(64n << 10n);
    expect(app!.writableLayer!.inodesUsed).toEqual({ value: '3' });
    expect(app!.writableLayer!.fsId).toEqual({ mountpoint: tmp });
    expect(idle).toEqual({
      attributes: subject().containers[1]!.attributes, cpu: null, memory: null, writableLayer: null, swap: null, io: null,
    });
    expect(linux.network!.defaultInterface!.name).toBe('eth0');
    expect(BigInt(linux.network!.defaultInterface!.txBytes!.value as string)).toBeGreaterThan(0n);
    expect(linux.network!.interfaces!.map((i) => i.name).sort()).toEqual(['eth0', 'peer0']);

    const one = await collector.containerStats(subject().containers[0]!);
    expect(one.attributes!.labels).toEqual({ l: '1' });
    expect(one.cpu!.usageNanoCores).not.toBeNull();
  });

  it('holds no cgroup file open between readings', async () => {
    // Each kept descriptor would hold ~5 KiB of unreclaimable kernel memory, and every process
    // the daemon spawns would close them all at exec (kernel-file-reader.ts).
    const collector = new StatsCollector({ cgroupTtlMs: 0 });
    const before = openUnder('/sys/fs/cgroup').length;
    for (let i = 0; i < 2; i++) {
      const s = await collector.podSandboxStats(subject());
      expect(BigInt(s.linux!.memory!.usageBytes!.value as string)).toBeGreaterThan(0n);
    }
    expect(openUnder('/sys/fs/cgroup').length).toBe(before);
    collector.close();
  });

  it('serves metrics for the same pod and sums containers when the pod has no cgroup', async () => {
    const collector = new StatsCollector();
    const m = await collector.podSandboxMetrics(subject());
    expect(m.podSandboxId).toBe('p1');
    const ws = m.containerMetrics![0]!.metrics!.find((x) => x.name === 'container_memory_working_set_bytes')!;
    expect(ws.labelValues).toEqual(['app', `${podCg}/crib-c1`, 'busybox:latest', 'c1', 'default', 'web']);
    expect(m.containerMetrics![1]).toEqual({ containerId: 'c2', metrics: [] });
    expect(m.metrics!.some((x) => x.name === 'container_network_transmit_bytes_total'
      && x.labelValues!.at(-1) === 'eth0')).toBe(true);
    expect(collector.listMetricDescriptors().length).toBeGreaterThan(20);

    const noParent = { ...subject(), cgroupParent: '', netnsPath: undefined };
    const s = await collector.podSandboxStats(noParent);
    expect(s.linux!.cpu!.usageCoreNanoSeconds).toEqual(s.linux!.containers![0]!.cpu!.usageCoreNanoSeconds);
    expect(s.linux!.network).toBeNull();
    const gone = await collector.podSandboxStats({ ...subject(), netnsPath: `/run/netns/${netnsName}-gone` });
    expect(gone.linux!.network).toBeNull();
  });
});

describe('StatsCollector at scale', () => {
  const many = `${podCg}-many`;
  const n = 100;
  afterAll(async () => {
    for (const c of controllers) {
      for (let i = 0; i < n; i++) await rmdirRetry(`/sys/fs/cgroup/${c}${many}/crib-m${i}`).catch(() => undefined);
      await rmdirRetry(`/sys/fs/cgroup/${c}${many}`).catch(() => undefined);
    }
  });

  it('reads a pod of 100 containers (cgroups and 20-file layers) within a few seconds', async () => {
    const containers = [];
    for (let i = 0; i < n; i++) {
      for (const c of controllers) await mkdir(`/sys/fs/cgroup/${c}${many}/crib-m${i}`, { recursive: true });
      const dir = join(tmp, `layers/m${i}`);
      await mkdir(dir, { recursive: true });
      await Promise.all(Array.from({ length: 20 }, (_, f) => writeFile(join(dir, `f${f}`), 'x')));
      containers.push({
        attributes: { id: `m${i}`, metadata: { name: `m${i}`, attempt: 0 }, labels: {}, annotations: {} },
        cgroupsPath: `${many}/crib-m${i}`,
        writableLayer: { dir, mountpoint: tmp },
      });
    }
    const collector = new StatsCollector();
    const pod: PodSubject = { ...subject(), cgroupParent: many, containers };
    const t0 = performance.now();
    const cold = await collector.podSandboxStats(pod);
    const coldMs = performance.now() - t0;
    const t1 = performance.now();
    await collector.podSandboxStats(pod);
    const warmMs = performance.now() - t1;
    console.log(`stats for ${n} containers: cold ${coldMs.toFixed(0)} ms, warm (layer cache) ${warmMs.toFixed(0)} ms`);
    expect(cold.linux!.containers).toHaveLength(n);
    expect(cold.linux!.containers!.every((c) => c.writableLayer!.inodesUsed!.value === '21' && c.memory !== null)).toBe(true);
    expect(coldMs).toBeLessThan(10_000);
    expect(warmMs).toBeLessThan(10_000);
  });
});
