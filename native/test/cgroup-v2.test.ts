// The cgroup library's v2 code: for real on the host's cgroup2 mount at /sys/fs/cgroup/unified
// (no v2 memory/cpu/pids controllers there, v1 holds them; moving processes, freeze,
// cgroup.kill, subtree_control delegation, hugetlb limits and the device BPF program are
// real), and the resources → files translation on a prepared tree of plain files standing in
// for the controller files.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import {
  buildDriver, driverOk, exited, pidsOf, runDriver, spawnSleeper, uniqueName, waitFor, type Driver,
} from './support/cgroup-driver.js';

const UNIFIED = '/sys/fs/cgroup/unified';
const hasUnified = existsSync(`${UNIFIED}/cgroup.procs`);
const MiB = 1024 * 1024;

let driver: Driver;
beforeAll(async () => {
  driver = await buildDriver();
});
afterAll(() => driver?.cleanup());

describe.skipIf(!hasUnified)('cgroup v2 on the real cgroup2 mount', () => {
  const env = { CRIB_CGROUP_ROOT: UNIFIED, CRIB_CGROUP_MODE: 'v2' };
  const cgroups: string[] = [];
  const children: ChildProcess[] = [];
  let rootSubtreeBefore = '';

  beforeAll(() => {
    rootSubtreeBefore = readFileSync(`${UNIFIED}/cgroup.subtree_control`, 'utf8').trim();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    for (const name of cgroups.splice(0)) {
      await runDriver(driver, ['kill', name, '9'], env);
      const r = await runDriver(driver, ['destroy', name], env);
      if (r.code !== 0) throw new Error(`cleanup of ${name} failed: ${r.stderr}`);
    }
  });
  afterAll(async () => {
    // create delegated controllers from the mount's root; hand back what was not enabled
    // before. Removed cgroups can keep a controller busy for a moment, hence the retries;
    // best effort, as someone else on the mount may be using it by now.
    const now = readFileSync(`${UNIFIED}/cgroup.subtree_control`, 'utf8').trim().split(/\s+/);
    const before = new Set(rootSubtreeBefore.split(/\s+/));
    for (const c of now.filter((c) => c && !before.has(c))) {
      await waitFor(`-${c} in ${UNIFIED}/cgroup.subtree_control`, () => {
        try {
          writeFileSync(`${UNIFIED}/cgroup.subtree_control`, `-${c}`);
          return true;
        } catch {
          return false;
        }
      }, 3000).catch(() => {});
    }
  });

  it('detects v2 from the mount itself (statfs), without CRIB_CGROUP_MODE', async () => {
    const out = await driverOk(driver, ['detect'], { CRIB_CGROUP_ROOT: UNIFIED });
    expect(out.trim()).toBe(`v2 ${UNIFIED}`);
  });

  it('creates nested cgroups delegating the offered controllers, and moves processes in', async () => {
    const name = uniqueName('v2');
    cgroups.push(name);
    const leaf = `${name}/pod/ctr`;
    await driverOk(driver, ['create', leaf], env);
    await driverOk(driver, ['create', leaf], env); // idempotent
    expect(existsSync(`${UNIFIED}/${leaf}/cgroup.procs`)).toBe(true);

    const offered = readFileSync(`${UNIFIED}/cgroup.controllers`, 'utf8').trim().split(/\s+/);
    const wanted = ['cpu', 'memory', 'pids', 'io', 'cpuset', 'hugetlb'].filter((c) =>
      offered.includes(c));
    for (const dir of ['', `/${name}`, `/${name}/pod`]) {
      const enabled = readFileSync(`${UNIFIED}${dir}/cgroup.subtree_control`, 'utf8');
      for (const c of wanted) expect(enabled.split(/\s+/), `${dir}: ${c}`).toContain(c);
    }
    // The leaf holds processes: it must not delegate anything.
    expect(readFileSync(`${UNIFIED}/${leaf}/cgroup.subtree_control`, 'utf8').trim()).toBe('');

    // hugetlb is bound to no v1 hierarchy here, so v2 has it: limits land for real.
    if (existsSync(`${UNIFIED}/${leaf}/hugetlb.2MB.max`)) {
      await driverOk(driver, ['apply', leaf,
        JSON.stringify({ hugepageLimits: [{ pageSize: '2MB', limit: 8 * MiB }] })], env);
      expect(readFileSync(`${UNIFIED}/${leaf}/hugetlb.2MB.max`, 'utf8').trim()).toBe(String(8 * MiB));
    }

    const sleepers = [spawnSleeper(), spawnSleeper()];
    children.push(...sleepers);
    for (const s of sleepers) await driverOk(driver, ['enter', leaf, String(s.pid)], env);
    const procs = readFileSync(`${UNIFIED}/${leaf}/cgroup.procs`, 'utf8').trim().split('\n');
    for (const s of sleepers) expect(procs).toContain(String(s.pid));
    expect(readFileSync(`/proc/${sleepers[0].pid}/cgroup`, 'utf8')).toContain(`0::/${leaf}\n`);
    // pids of an ancestor include its sub-cgroups.
    expect(pidsOf(await driverOk(driver, ['pids', name], env))).toEqual(
      sleepers.map((s) => s.pid!).sort((a, b) => a - b));

    await driverOk(driver, ['kill', name, '9'], env);
    for (const s of sleepers) expect((await exited(s)).signal).toBe('SIGKILL');
    await driverOk(driver, ['destroy', name], env);
    expect(existsSync(`${UNIFIED}/${name}`)).toBe(false);
  });

  it('kill_all with SIGKILL uses cgroup.kill and empties the cgroup', async () => {
    const name = uniqueName('v2kill');
    cgroups.push(name);
    await driverOk(driver, ['create', name], env);
    expect(existsSync(`${UNIFIED}/${name}/cgroup.kill`)).toBe(true);
    const sleepers = [spawnSleeper(), spawnSleeper(), spawnSleeper()];
    children.push(...sleepers);
    for (const s of sleepers) await driverOk(driver, ['enter', name, String(s.pid)], env);
    await driverOk(driver, ['kill', name, '9'], env);
    for (const s of sleepers) expect((await exited(s)).signal).toBe('SIGKILL');
    await waitFor('cgroup to empty', async () =>
      pidsOf(await driverOk(driver, ['pids', name], env)).length === 0);
  });

  it('kill_all with SIGTERM freezes, signals each process and thaws', async () => {
    const name = uniqueName('v2term');
    cgroups.push(name);
    await driverOk(driver, ['create', name], env);
    const sleepers = [spawnSleeper(), spawnSleeper()];
    children.push(...sleepers);
    for (const s of sleepers) await driverOk(driver, ['enter', name, String(s.pid)], env);
    await driverOk(driver, ['kill', name, '15'], env);
    for (const s of sleepers) expect((await exited(s)).signal).toBe('SIGTERM');
    expect(readFileSync(`${UNIFIED}/${name}/cgroup.freeze`, 'utf8').trim()).toBe('0');
    expect(readFileSync(`${UNIFIED}/${name}/cgroup.events`, 'utf8')).toContain('frozen 0');
  });

  it('enforces device rules with a BPF program, replaced on each apply', async () => {
    const name = uniqueName('v2dev');
    cgroups.push(name);
    await driverOk(driver, ['create', name], env);
    const probe = () => runDriver(driver, ['run', name, '/bin/busybox', 'sh', '-c',
      'echo hi > /dev/null && echo null-write-ok; ' +
      'head -c 1 /dev/zero | wc -c; echo x > /dev/zero && echo zero-write-ok'], env);

    // Deny all, then allow /dev/null (c 1:3): /dev/zero (c 1:5) is refused by the kernel.
    await driverOk(driver, ['apply', name, JSON.stringify({ devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    ] })], env);
    let r = await probe();
    expect(r.stdout).toContain('null-write-ok');
    expect(r.stdout).not.toContain('zero-write-ok');
    expect(r.stdout.trim().split('\n')).toContain('0');
    expect(r.stderr).toContain('/dev/zero: Operation not permitted');

    // An update replaces the old program (programs on one cgroup AND together otherwise).
    await driverOk(driver, ['apply', name, JSON.stringify({ devices: [
      { allow: true, access: 'rwm' },
    ] })], env);
    r = await probe();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('null-write-ok\n1\nzero-write-ok\n');

    // Access is per rule: read of c 1:5 allowed, its write and everything else denied; the
    // later deny of c 1:3 wins over the earlier allow-all.
    await driverOk(driver, ['apply', name, JSON.stringify({ devices: [
      { allow: true, type: 'c', major: 1, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 3 },
      { allow: false, type: 'c', major: 1, minor: 5 },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'r' },
    ] })], env);
    r = await probe();
    expect(r.stdout).not.toContain('null-write-ok');
    expect(r.stdout).not.toContain('zero-write-ok');
    expect(r.stdout.trim().split('\n')).toContain('1');
    expect(r.stderr).toContain("can't create /dev/null: Operation not permitted");
    expect(r.stderr).toContain("can't create /dev/zero: Operation not permitted");
  });

  it('reports limits whose controller is missing, and destroy of a missing cgroup is ok', async () => {
    const name = uniqueName('v2err');
    cgroups.push(name);
    await driverOk(driver, ['create', name], env);
    const r = await runDriver(driver, ['apply', name, JSON.stringify({ pids: { limit: 5 } })], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`open/write ${UNIFIED}/${name}/pids.max "5": No such file or directory`);
    const o = await runDriver(driver, ['oom', name], env);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain(`${UNIFIED}/${name}/memory.events`);
    await driverOk(driver, ['destroy', name], env);
    await driverOk(driver, ['destroy', name], env);
  });
});

describe('cgroup v2 resources → files (prepared tree)', () => {
  let root: string;
  const leaf = '/pod/ctr';
  const dir = () => join(root, leaf);
  const env = () => ({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v2' });
  const files = ['cpu.weight', 'cpu.max', 'cpu.max.burst', 'cpu.idle', 'memory.max',
    'memory.swap.max', 'memory.low', 'memory.oom.group', 'pids.max', 'io.weight', 'io.max',
    'hugetlb.2MB.max', 'hugetlb.1GB.max', 'cpuset.cpus', 'cpuset.mems', 'cgroup.subtree_control'];

  const read = (file: string) => readFileSync(join(dir(), file), 'utf8');
  const apply = (resources: unknown) =>
    runDriver(driver, ['apply', leaf, JSON.stringify(resources)], env());

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'crib-cgroup-v2-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => {
    rmSync(join(root, 'pod'), { recursive: true, force: true });
    for (const f of ['cgroup.controllers', 'cgroup.subtree_control']) rmSync(join(root, f), { force: true });
  });

  function prepare(extra: string[] = []): void {
    mkdirSync(dir(), { recursive: true });
    for (const f of [...files, ...extra]) writeFileSync(join(dir(), f), '');
    for (const d of [root, join(root, 'pod')]) {
      writeFileSync(join(d, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
      writeFileSync(join(d, 'cgroup.subtree_control'), '');
    }
  }

  it('enables the wanted controllers in each ancestor, not in the leaf', async () => {
    prepare();
    await driverOk(driver, ['create', leaf], env());
    for (const d of [root, join(root, 'pod')])
      expect(readFileSync(join(d, 'cgroup.subtree_control'), 'utf8'))
        .toBe('+cpu +memory +pids +io +cpuset +hugetlb');
    expect(read('cgroup.subtree_control')).toBe('');
  });

  it('translates memory, cpu, cpuset, pids, io and hugetlb', async () => {
    prepare();
    const r = await apply({
      memory: { limit: 64 * MiB, swap: 96 * MiB, reservation: 16 * MiB },
      cpu: { shares: 1024, quota: 50_000, period: 100_000, burst: 1000, idle: 0, cpus: '0-1', mems: '0' },
      pids: { limit: 7 },
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: MiB }] },
      hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2 * MiB }, { pageSize: '1GB', limit: 0 }],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(read('memory.max')).toBe(String(64 * MiB));
    expect(read('memory.swap.max')).toBe(String(32 * MiB)); // swap is memory+swap in OCI
    expect(read('memory.low')).toBe(String(16 * MiB));
    expect(read('cpu.weight')).toBe('39'); // 1 + (1024-2)*9999/262142
    expect(read('cpu.max')).toBe('50000 100000');
    expect(read('cpu.max.burst')).toBe('1000');
    expect(read('cpu.idle')).toBe('0');
    expect(read('cpuset.cpus')).toBe('0-1');
    expect(read('cpuset.mems')).toBe('0');
    expect(read('pids.max')).toBe('7');
    expect(read('io.weight')).toBe('4950'); // 1 + (500-10)*9999/990
    expect(read('io.max')).toBe(`8:0 rbps=${MiB}`);
    expect(read('hugetlb.2MB.max')).toBe(String(8 * MiB));
    expect(read('hugetlb.1GB.max')).toBe('0');
  });

  it.each([
    [2, '1'], [1024, '39'], [512, '20'], [262144, '10000'],
  ])('cpu.shares %i → cpu.weight %s', async (shares, weight) => {
    prepare();
    await apply({ cpu: { shares } }).then((r) => expect(r.stderr).toBe(''));
    expect(read('cpu.weight')).toBe(weight);
  });

  it('writes "max" for unlimited values and keeps the other half of cpu.max', async () => {
    prepare();
    writeFileSync(join(dir(), 'cpu.max'), '20000 100000\n');
    expect((await apply({ cpu: { period: 50_000 } })).code).toBe(0);
    expect(read('cpu.max')).toBe('20000 50000');
    expect((await apply({ cpu: { quota: -1 } })).code).toBe(0);
    expect(read('cpu.max')).toBe('max 50000');
    expect((await apply({ memory: { limit: -1 }, pids: { limit: 0 } })).code).toBe(0);
    expect(read('memory.max')).toBe('max');
    expect(read('memory.swap.max')).toBe('max');
    expect(read('pids.max')).toBe('max');
    expect((await apply({ memory: { limit: 32 * MiB, swap: -1 }, pids: { limit: -1 } })).code).toBe(0);
    expect(read('memory.max')).toBe(String(32 * MiB));
    expect(read('memory.swap.max')).toBe('max');
  });

  it('uses io.bfq.weight unconverted when the kernel has BFQ', async () => {
    prepare(['io.bfq.weight']);
    expect((await apply({ blockIO: { weight: 500 } })).code).toBe(0);
    expect(read('io.bfq.weight')).toBe('500');
    expect(read('io.weight')).toBe('');
  });

  it('writes unified keys verbatim, after and over the translated values', async () => {
    prepare();
    const r = await apply({
      cpu: { shares: 1024 },
      memory: { limit: 64 * MiB },
      unified: { 'cpu.weight': '77', 'memory.max': '1048576', 'memory.oom.group': '1' },
    });
    expect(r.stderr).toBe('');
    expect(read('cpu.weight')).toBe('77');
    expect(read('memory.max')).toBe('1048576');
    expect(read('memory.oom.group')).toBe('1');
  });

  it.each([
    [{ unified: { '../escape': '1' } }, 'must be a plain file name'],
    [{ unified: { 'a/b': '1' } }, 'must be a plain file name'],
    [{ unified: { 'memory.high': 5 } }, 'linux.resources.unified.memory.high: expected a string'],
    [{ unified: { 'memory.high': '5' } }, `memory.high "5": No such file or directory`],
    [{ memory: { limit: 64 * MiB, swap: 32 * MiB } }, 'must be >= memory.limit'],
    [{ memory: { swap: 32 * MiB } }, 'a swap limit needs a memory limit'],
    [{ hugepageLimits: [{ pageSize: '../2MB', limit: 1 }] }, 'pageSize "../2MB"'],
    [{ cpu: { shares: '1024' } }, 'linux.resources.cpu.shares: expected an integer'],
    [{ devices: [{ allow: true, type: 'x' }] }, 'linux.resources.devices[0].type "x"'],
  ])('rejects %j', async (resources, message) => {
    prepare();
    const r = await apply(resources);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    // Validation happens before any write.
    if (!String(message).includes('No such file')) expect(read('memory.max')).toBe('');
  });
});
