// The native side on a real cgroup v2 node: the cgroup library (through cgroup-driver, as the
// host's native/test/cgroup-v2.test.ts drives it against a prepared tree) and crib-runtime with
// linux.resources. Here every controller exists, so each translated value is written to the
// kernel's own file — which validates it — and read back from it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDriver, driverOk, runDriver, uniqueName, type Driver,
} from '../../native/test/support/cgroup-driver.js';
import { makeBundle, testTag, type Bundle, type Spec } from '../../native/test/support/runtime-bundle.js';
import {
  NOTHING_LEFT, Runtime, buildHelper, cribRuntime, deleteListed, leftovers, waitFor,
} from '../../native/test/support/runtime-runner.js';
import { CGROUP_ROOT, MiB, cgroupFile, flatKeyed } from '../support.js';
import { assertInGuest } from '../global-setup.js';

const env = { CRIB_CGROUP_ROOT: '', CRIB_CGROUP_MODE: '' }; // detection, as in production

describe('cgroup library on the unified hierarchy', () => {
  let driver: Driver;
  const made: string[] = [];
  beforeAll(async () => {
    assertInGuest();
    driver = await buildDriver();
  });
  afterAll(async () => {
    for (const name of made) {
      await runDriver(driver, ['kill', name, '9'], env);
      await driverOk(driver, ['destroy', name], env);
      expect(existsSync(join(CGROUP_ROOT, name))).toBe(false);
    }
    driver?.cleanup();
  });

  it('detects v2 and writes every translated limit into the kernel\'s files', async () => {
    expect((await driverOk(driver, ['detect'], env)).trim()).toBe(`v2 ${CGROUP_ROOT}`);
    const name = uniqueName('lib');
    made.push(name);
    const leaf = `${name}/pod/ctr`;
    await driverOk(driver, ['create', leaf], env);
    const dir = join(CGROUP_ROOT, leaf);
    for (const d of [name, `${name}/pod`]) {
      expect(cgroupFile(join(CGROUP_ROOT, d), 'cgroup.subtree_control').split(' ').sort())
        .toEqual(['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids']);
    }
    await driverOk(driver, ['apply', leaf, JSON.stringify({
      memory: { limit: 64 * MiB, swap: 96 * MiB, reservation: 16 * MiB },
      cpu: { shares: 1024, quota: 50_000, period: 100_000, burst: 1000, cpus: '0', mems: '0' },
      pids: { limit: 7 },
      blockIO: { weight: 500 },
      hugepageLimits: [{ pageSize: '2MB', limit: 8 * MiB }],
      unified: { 'memory.high': String(60 * MiB) },
    })], env);
    expect(cgroupFile(dir, 'memory.max')).toBe(String(64 * MiB));
    expect(cgroupFile(dir, 'memory.swap.max')).toBe(String(32 * MiB));
    expect(cgroupFile(dir, 'memory.low')).toBe(String(16 * MiB));
    expect(cgroupFile(dir, 'memory.high')).toBe(String(60 * MiB));
    expect(cgroupFile(dir, 'cpu.weight')).toBe('39');
    expect(cgroupFile(dir, 'cpu.max')).toBe('50000 100000');
    expect(cgroupFile(dir, 'cpu.max.burst')).toBe('1000');
    expect(cgroupFile(dir, 'cpuset.cpus')).toBe('0');
    expect(cgroupFile(dir, 'cpuset.mems')).toBe('0');
    expect(cgroupFile(dir, 'pids.max')).toBe('7');
    expect(cgroupFile(dir, 'io.weight')).toBe('default 4950');
    expect(cgroupFile(dir, 'hugetlb.2MB.max')).toBe(String(8 * MiB));

    // Unlimited values are "max"; an update of the period keeps the quota.
    await driverOk(driver, ['apply', leaf, JSON.stringify({ memory: { limit: -1 }, pids: { limit: 0 }, cpu: { period: 50_000 } })], env);
    expect(cgroupFile(dir, 'memory.max')).toBe('max');
    expect(cgroupFile(dir, 'memory.swap.max')).toBe('max');
    expect(cgroupFile(dir, 'pids.max')).toBe('max');
    expect(cgroupFile(dir, 'cpu.max')).toBe('50000 50000');
  });

  it('reports a value the kernel refuses, naming the file', async () => {
    const name = uniqueName('bad');
    made.push(name);
    await driverOk(driver, ['create', name], env);
    const r = await runDriver(driver, ['apply', name, JSON.stringify({ cpu: { cpus: '64' } })], env);
    expect(r.code).toBe(1);
    // This 2-CPU guest has no CPU 64: the kernel says ERANGE.
    expect(r.stderr).toContain(`open/write ${CGROUP_ROOT}/${name}/cpuset.cpus "64": Numerical result out of range`);
  });

  it('enforces pids.max and counts OOM kills from memory.events', async () => {
    const name = uniqueName('enforce');
    made.push(name);
    await driverOk(driver, ['create', name], env);
    await driverOk(driver, ['apply', name, JSON.stringify({ pids: { limit: 3 }, memory: { limit: 32 * MiB, swap: 32 * MiB } })], env);
    // The driver enters the cgroup and becomes sh: sh + 2 sleeps fill the limit, the third fails.
    const forks = await runDriver(driver, ['run', name, '/bin/busybox', 'sh', '-c',
      'for i in 1 2 3; do sleep 30 >/dev/null 2>&1 & done; kill %1 %2'], env);
    expect(forks.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    expect(flatKeyed(join(CGROUP_ROOT, name), 'pids.events').max).toBeGreaterThanOrEqual(1);
    expect((await driverOk(driver, ['oom', name], env)).trim()).toBe('0');
    const hog = await runDriver(driver, ['run', name, '/bin/busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], env);
    expect(hog.signal).toBe('SIGKILL');
    expect((await driverOk(driver, ['oom', name], env)).trim()).toBe('1');
  });
});

describe('crib-runtime with linux.resources on cgroup v2', () => {
  let rt: Runtime;
  let helpers: string;
  let reaperBin: string;
  const bundles: Bundle[] = [];
  const reapers: ChildProcess[] = [];

  beforeAll(async () => {
    rt = await Runtime.crib();
    helpers = await mkdtemp(join(tmpdir(), `${testTag}-helpers-`));
    reaperBin = buildHelper('runtime-reaper', helpers);
  });
  afterAll(async () => {
    const listed = await deleteListed(rt);
    for (const p of reapers) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const b of bundles) await b.remove();
    await rm(helpers, { recursive: true, force: true });
    await rm(rt.root, { recursive: true, force: true });
    expect(listed).toEqual([]);
    expect(leftovers()).toEqual(NOTHING_LEFT);
  });

  async function bundle(args: string[], patch: (s: Spec) => void): Promise<Bundle> {
    const b = await makeBundle('v2', args, patch);
    bundles.push(b);
    return b;
  }

  /** `crib-runtime create` under the subreaper helper (it reaps the container init). */
  async function create(b: Bundle): Promise<number> {
    const p = spawn(reaperBin, [cribRuntime, '--root', rt.root, 'create', '--bundle', b.dir, '--pid-file', join(b.dir, 'pid'), b.id],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    reapers.push(p);
    let stderr = '';
    p.stderr!.on('data', (d) => { stderr += d; });
    p.stdio[3]!.on('data', () => undefined);
    await waitFor('create to park the init', () => existsSync(join(b.dir, 'pid')) || p.exitCode !== null, 120_000);
    expect(stderr).toBe('');
    return Number(await readFile(join(b.dir, 'pid'), 'utf8'));
  }

  it('runs a container whose own view of /sys/fs/cgroup shows its limits', async () => {
    const b = await bundle(['sh', '-c', 'cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight'], (s) => {
      s.linux.resources = { ...s.linux.resources, memory: { limit: 48 * MiB }, pids: { limit: 20 }, cpu: { shares: 2048, quota: 30_000, period: 100_000 } };
    });
    const r = await rt.exec(['run', '--bundle', b.dir, b.id], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`0::/\n${48 * MiB}\n20\n30000 100000\n79\n`);
    expect(existsSync(join(CGROUP_ROOT, `${testTag}-${b.id}`))).toBe(false);
  });

  it('update changes the limits of a live container; delete removes its cgroup', async () => {
    const b = await bundle(['sleep', '1000'], (s) => {
      s.linux.resources = { ...s.linux.resources, memory: { limit: 32 * MiB }, pids: { limit: 10 } };
    });
    const pid = await create(b);
    const dir = join(CGROUP_ROOT, `${testTag}-${b.id}`);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toBe(`0::/${testTag}-${b.id}\n`);
    const u = await rt.exec(['update', '--resources', '-', b.id], {
      input: JSON.stringify({ memory: { limit: 80 * MiB, swap: 80 * MiB }, pids: { limit: 42 }, cpu: { quota: 20_000, period: 50_000 } }),
    });
    expect(u.stderr).toBe('');
    expect(cgroupFile(dir, 'memory.max')).toBe(String(80 * MiB));
    expect(cgroupFile(dir, 'memory.swap.max')).toBe('0');
    expect(cgroupFile(dir, 'pids.max')).toBe('42');
    expect(cgroupFile(dir, 'cpu.max')).toBe('20000 50000');
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('makes the systemd-style cgroupsPath\'s slices and scope', async () => {
    const slice = `cribtest${process.pid}.slice`;
    const b = await bundle(['sleep', '1000'], () => undefined);
    b.spec.linux.cgroupsPath = `${slice}:crib:${b.id}`;
    await b.write();
    const pid = await create(b);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toBe(`0::/${slice}/crib-${b.id}.scope\n`);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    expect(existsSync(join(CGROUP_ROOT, slice, `crib-${b.id}.scope`))).toBe(false);
    // The slice is the cgroup manager's (kubelet's) to remove.
    rmdirSync(join(CGROUP_ROOT, slice));
  });
});
