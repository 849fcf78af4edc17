// The cgroup library on this host's real cgroup v1 hierarchies: create/apply/enter/destroy,
// limits actually enforced (OOM kill, pids.max), kill_all.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDriver, driverOk, exited, pidsOf, runDriver, spawnSleeper, uniqueName, waitFor, type Driver,
} from './support/cgroup-driver.js';
import type { ChildProcess } from 'node:child_process';

const ROOT = '/sys/fs/cgroup';
const isV1 = existsSync(`${ROOT}/memory/memory.limit_in_bytes`);
const MiB = 1024 * 1024;

let driver: Driver;
const cgroups: string[] = [];
const children: ChildProcess[] = [];

function read(controller: string, name: string, file: string): string {
  return readFileSync(`${ROOT}/${controller}/${name}/${file}`, 'utf8').trim();
}

function newCgroup(tag: string): string {
  const name = uniqueName(tag);
  cgroups.push(name);
  return name;
}

beforeAll(async () => {
  driver = await buildDriver();
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const name of cgroups.splice(0)) {
    await runDriver(driver, ['kill', name, '9']);
    const r = await runDriver(driver, ['destroy', name]);
    if (r.code !== 0) throw new Error(`cleanup of ${name} failed: ${r.stderr}`);
  }
});

afterAll(() => driver?.cleanup());

describe.skipIf(!isV1)('cgroup v1 (real hierarchies)', () => {
  it('detects the v1 layout', async () => {
    expect((await driverOk(driver, ['detect'])).trim()).toBe('v1 /sys/fs/cgroup');
  });

  it('takes only mounted cgroup filesystems as hierarchies, not a plain directory whose name lists a controller', async () => {
    // A private root (not the host's /sys/fs/cgroup): the pids hierarchy mounted a second time,
    // and beside it a plain directory named "cpu,pids", which sorts first and names pids.
    const root = await mkdtemp(join(tmpdir(), 'crib-cgroot-stray-'));
    const env = { CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v1' };
    const name = uniqueName('stray');
    await mkdir(join(root, 'pids'));
    await mkdir(join(root, 'cpu,pids'));
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'cgroup', '-o', 'pids', 'cgroup', join(root, 'pids')]);
      mounted = true;
      await driverOk(driver, ['create', name], env);
      await driverOk(driver, ['apply', name, JSON.stringify({ pids: { limit: 42 } })], env);
      expect(readFileSync(join(root, 'pids', name, 'pids.max'), 'utf8').trim()).toBe('42');
      expect(existsSync(join(root, 'cpu,pids', name))).toBe(false);
    } finally {
      if (mounted) {
        await runDriver(driver, ['destroy', name], env);
        execFileSync('umount', [join(root, 'pids')]);
      }
      await rm(root, { recursive: true, force: true });
    }
  });

  it('creates in every hierarchy, applies every limit, enters a process and destroys', async () => {
    const name = newCgroup('apply');
    await driverOk(driver, ['create', name]);
    const hierarchies = readdirSync(ROOT).filter((h) => h !== 'unified');
    for (const h of hierarchies) expect(existsSync(`${ROOT}/${h}/${name}`), h).toBe(true);
    // cpuset was inherited from the parent, or the tasks write below would fail.
    expect(read('cpuset', name, 'cpuset.cpus')).not.toBe('');

    const resources = {
      memory: { limit: 64 * MiB, swap: 96 * MiB, reservation: 32 * MiB },
      cpu: { shares: 512, quota: 50_000, period: 200_000, cpus: '0', mems: '0' },
      pids: { limit: 42 },
      blockIO: { weight: 300 },
    };
    const blkioFile = ['blkio.weight', 'blkio.bfq.weight'].find((f) =>
      existsSync(`${ROOT}/blkio/${name}/${f}`));
    if (!blkioFile) delete (resources as { blockIO?: unknown }).blockIO;
    await driverOk(driver, ['apply', name, JSON.stringify(resources)]);

    expect(read('memory', name, 'memory.limit_in_bytes')).toBe(String(64 * MiB));
    if (existsSync(`${ROOT}/memory/${name}/memory.memsw.limit_in_bytes`))
      expect(read('memory', name, 'memory.memsw.limit_in_bytes')).toBe(String(96 * MiB));
    expect(read('memory', name, 'memory.soft_limit_in_bytes')).toBe(String(32 * MiB));
    expect(read('cpu', name, 'cpu.shares')).toBe('512');
    expect(read('cpu', name, 'cpu.cfs_quota_us')).toBe('50000');
    expect(read('cpu', name, 'cpu.cfs_period_us')).toBe('200000');
    expect(read('cpuset', name, 'cpuset.cpus')).toBe('0');
    expect(read('cpuset', name, 'cpuset.mems')).toBe('0');
    expect(read('pids', name, 'pids.max')).toBe('42');
    if (blkioFile) expect(read('blkio', name, blkioFile)).toMatch(/(^|\s)300$/);

    const sleeper = spawnSleeper();
    children.push(sleeper);
    await driverOk(driver, ['enter', name, String(sleeper.pid)]);
    for (const h of hierarchies)
      expect(read(h, name, 'cgroup.procs').split('\n'), h).toContain(String(sleeper.pid));
    expect(pidsOf(await driverOk(driver, ['pids', name]))).toEqual([sleeper.pid]);

    sleeper.kill('SIGKILL');
    await exited(sleeper);
    await driverOk(driver, ['destroy', name]);
    for (const h of hierarchies) expect(existsSync(`${ROOT}/${h}/${name}`), h).toBe(false);
  });

  it('applies swappiness, disableOOMKiller and I/O throttling', async () => {
    const name = newCgroup('misc');
    await driverOk(driver, ['create', name]);
    // A real block device: throttle rules are checked against existing devices.
    const disk = readdirSync('/sys/block').find((d) => !d.startsWith('loop') && !d.startsWith('zram'))
      ?? readdirSync('/sys/block')[0];
    const [major, minor] = readFileSync(`/sys/block/${disk}/dev`, 'utf8').trim().split(':').map(Number);
    await driverOk(driver, ['apply', name, JSON.stringify({
      memory: { swappiness: 10, disableOOMKiller: true },
      blockIO: {
        throttleReadBpsDevice: [{ major, minor, rate: 1048576 }],
        throttleWriteIOPSDevice: [{ major, minor, rate: 100 }],
      },
    })]);
    expect(read('memory', name, 'memory.swappiness')).toBe('10');
    expect(read('memory', name, 'memory.oom_control')).toContain('oom_kill_disable 1');
    expect(read('blkio', name, 'blkio.throttle.read_bps_device')).toBe(`${major}:${minor} 1048576`);
    expect(read('blkio', name, 'blkio.throttle.write_iops_device')).toBe(`${major}:${minor} 100`);
  });

  it('raises and lowers memory limits in either order against memsw', async () => {
    const name = newCgroup('memorder');
    await driverOk(driver, ['create', name]);
    const hasMemsw = existsSync(`${ROOT}/memory/${name}/memory.memsw.limit_in_bytes`);
    const steps = [
      { limit: 32 * MiB, swap: 32 * MiB },
      { limit: 256 * MiB, swap: 512 * MiB }, // raise: memsw must go first
      { limit: 16 * MiB, swap: 16 * MiB }, // lower: limit must go first
      { limit: -1 }, // unlimited: swap follows
    ];
    for (const memory of steps) {
      await driverOk(driver, ['apply', name, JSON.stringify({ memory })]);
      const expected = memory.limit === -1 ? '9223372036854771712' : String(memory.limit);
      expect(read('memory', name, 'memory.limit_in_bytes')).toBe(expected);
      if (hasMemsw) {
        const swap = memory.swap === undefined ? '9223372036854771712' : String(memory.swap);
        expect(read('memory', name, 'memory.memsw.limit_in_bytes')).toBe(swap);
      }
    }
  });

  it('reports a failed write naming the file, the value and the errno', async () => {
    const name = newCgroup('badwrite');
    await driverOk(driver, ['create', name]);
    const r = await runDriver(driver, ['apply', name, JSON.stringify({ cpu: { cpus: '9999' } })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`open/write ${ROOT}/cpuset/${name}/cpuset.cpus "9999": `);
    const t = await runDriver(driver, ['apply', name, JSON.stringify({ memory: { limit: 'x' } })]);
    expect(t.stderr).toContain('linux.resources.memory.limit: expected an integer');
    const u = await runDriver(driver, ['apply', name, JSON.stringify({ unified: { 'a': 'b' } })]);
    expect(u.stderr).toContain('only valid on cgroup v2');
    const w = await runDriver(driver, ['apply', name,
      JSON.stringify({ memory: { limit: 64 * MiB, swap: 32 * MiB } })]);
    expect(w.stderr).toContain('must be >= memory.limit');
  });

  it('writes device rules in order over a deny-all base', async () => {
    const name = newCgroup('devices');
    await driverOk(driver, ['create', name]);
    const devices = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 136, access: 'rw' },
    ];
    await driverOk(driver, ['apply', name, JSON.stringify({ devices })]);
    expect(read('devices', name, 'devices.list').split('\n').sort()).toEqual(
      ['c 136:* rw', 'c 1:3 rwm']);
  });

  it('OOM-kills a memory hog in a 32 MiB cgroup and counts it', async () => {
    const name = newCgroup('oom');
    await driverOk(driver, ['create', name]);
    await driverOk(driver, ['apply', name,
      JSON.stringify({ memory: { limit: 32 * MiB, swap: 32 * MiB } })]);
    expect(Number(await driverOk(driver, ['oom', name]))).toBe(0);
    // Doubling a shell string allocates for real until the kernel steps in (~32 MiB).
    const r = await runDriver(driver, ['run', name, '/bin/busybox', 'sh', '-c',
      'x=0123456789abcdef; while :; do x=$x$x; done']);
    expect(r.signal).toBe('SIGKILL');
    expect(Number(await driverOk(driver, ['oom', name]))).toBeGreaterThanOrEqual(1);
  });

  it('pids.max 5 stops a process from forking a sixth', async () => {
    const name = newCgroup('pids');
    await driverOk(driver, ['create', name]);
    await driverOk(driver, ['apply', name, JSON.stringify({ pids: { limit: 5 } })]);
    const r = await runDriver(driver, ['run', name, '/bin/busybox', 'sh', '-c',
      // The sleepers must not hold the driver's output pipes open.
      'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/busybox sleep 600 >/dev/null 2>&1 & done; wait']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("can't fork");
    // The shell got 4 children before the 5-task limit refused the next fork.
    expect(pidsOf(await driverOk(driver, ['pids', name]))).toHaveLength(4);
    expect(read('pids', name, 'pids.events')).toMatch(/^max [1-9]/);
  });

  it('kill_all empties a cgroup holding 3 sleeping processes, then destroy removes it', async () => {
    const name = newCgroup('killall');
    await driverOk(driver, ['create', name]);
    const sleepers = [spawnSleeper(), spawnSleeper(), spawnSleeper()];
    children.push(...sleepers);
    for (const s of sleepers) await driverOk(driver, ['enter', name, String(s.pid)]);
    expect(pidsOf(await driverOk(driver, ['pids', name]))).toEqual(
      sleepers.map((s) => s.pid!).sort((a, b) => a - b));
    await driverOk(driver, ['kill', name, '9']);
    for (const s of sleepers) expect((await exited(s)).signal).toBe('SIGKILL');
    await waitFor('cgroup to empty', async () =>
      pidsOf(await driverOk(driver, ['pids', name])).length === 0);
    // The freezer was thawed again after signalling.
    expect(read('freezer', name, 'freezer.state')).toBe('THAWED');
    await driverOk(driver, ['destroy', name]);
    expect(existsSync(`${ROOT}/memory/${name}`)).toBe(false);
  });

  it('kill_all with SIGTERM reaches each process once and leaves the cgroup thawed', async () => {
    const name = newCgroup('term');
    await driverOk(driver, ['create', name]);
    const sleepers = [spawnSleeper(), spawnSleeper()];
    children.push(...sleepers);
    for (const s of sleepers) await driverOk(driver, ['enter', name, String(s.pid)]);
    await driverOk(driver, ['kill', name, '15']);
    for (const s of sleepers) expect((await exited(s)).signal).toBe('SIGTERM');
    expect(read('freezer', name, 'freezer.state')).toBe('THAWED');
  });

  it('kill_all leaves a paused (frozen) cgroup paused, except for SIGKILL', async () => {
    const name = newCgroup('paused');
    await driverOk(driver, ['create', name]);
    const sleeper = spawnSleeper();
    children.push(sleeper);
    await driverOk(driver, ['enter', name, String(sleeper.pid)]);
    writeFileSync(`${ROOT}/freezer/${name}/freezer.state`, 'FROZEN');
    await waitFor('freeze', () => read('freezer', name, 'freezer.state') === 'FROZEN');
    await driverOk(driver, ['kill', name, '15']);
    expect(read('freezer', name, 'freezer.state')).toBe('FROZEN');
    expect(sleeper.exitCode === null && sleeper.signalCode === null).toBe(true);
    await driverOk(driver, ['kill', name, '9']);
    expect((await exited(sleeper)).signal).not.toBeNull();
    expect(read('freezer', name, 'freezer.state')).toBe('THAWED');
  });

  it('destroy waits for killed processes to leave and removes nested cgroups', async () => {
    const name = newCgroup('nested');
    await driverOk(driver, ['create', `${name}/child/grandchild`]);
    const sleeper = spawnSleeper();
    children.push(sleeper);
    await driverOk(driver, ['enter', `${name}/child/grandchild`, String(sleeper.pid)]);
    // pids covers sub-cgroups.
    expect(pidsOf(await driverOk(driver, ['pids', name]))).toEqual([sleeper.pid]);
    await driverOk(driver, ['kill', name, '9']);
    await driverOk(driver, ['destroy', name]);
    expect(existsSync(`${ROOT}/pids/${name}`)).toBe(false);
  });

  it('destroy and kill_all of a missing cgroup succeed', async () => {
    await driverOk(driver, ['destroy', uniqueName('missing')]);
    await driverOk(driver, ['kill', uniqueName('missing'), '9']);
  });

  it('creates systemd-style paths as nested slices and is idempotent', async () => {
    const slice = uniqueName('sd').replace(/-/g, '_');
    cgroups.push(`${slice}.slice`);
    const path = `${slice}-pod1.slice:crib:abc`;
    await driverOk(driver, ['create', path]);
    await driverOk(driver, ['create', path]);
    const dir = `${ROOT}/pids/${slice}.slice/${slice}-pod1.slice/crib-abc.scope`;
    expect(existsSync(dir)).toBe(true);
    await driverOk(driver, ['destroy', path]);
    expect(existsSync(dir)).toBe(false);
  });
});
