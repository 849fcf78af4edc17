// readCgroupStats on prepared v1/v2 trees, for exact parsing. On real cgroups of this host (which
// takes root to make): root-test/stats/cgroup-stats.test.ts.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../errors.js';
import { cgroupLayout } from './cgroup-path.js';
import { readCgroupStats } from './cgroup-stats.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

const unique = () => `crib-stats-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

describe('a cgroup that does not exist', () => {
  it('throws NotFoundError naming a cgroup that does not exist', async () => {
    const rel = `/${unique()}`;
    await expect(readCgroupStats(cgroupLayout({}), rel)).rejects.toThrow(NotFoundError);
    await expect(readCgroupStats(cgroupLayout({}), rel)).rejects.toThrow(`cgroup ${rel} does not exist`);
  });
});

describe('cgroup v2 prepared tree', () => {
  it('parses a prepared v2 tree exactly (CRIB_CGROUP_ROOT override)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'crib-stats-v2-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const dir = join(root, 'kubepods.slice/crib-c1.scope');
    await mkdir(dir, { recursive: true });
    const files: Record<string, string> = {
      'cpu.stat': 'usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n',
      'cpu.pressure': 'some avg10=1.50 avg60=0.25 avg300=0.00 total=4200\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n',
      'memory.current': '52428800\n',
      'memory.stat': 'anon 31457280\nfile 20971520\ninactive_file 10485760\npgfault 1234\npgmajfault 5\n',
      'memory.max': '104857600\n',
      'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n',
      'memory.swap.current': '4096\n',
      'memory.swap.max': 'max\n',
      'pids.current': '7\n',
      'pids.max': 'max\n',
      'cgroup.procs': '1\n2\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const layout = cgroupLayout({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v2' });
    const s = await readCgroupStats(layout, '/kubepods.slice/crib-c1.scope');
    expect(BigInt(s.timestamp)).toBeGreaterThan(1_600_000_000_000_000_000n);
    expect(s.cpu).toEqual({
      usageNs: 1_500_000_000n, userNs: 1_000_000_000n, systemNs: 500_000_000n,
      periods: 10n, throttledPeriods: 2n, throttledNs: 3_000_000n,
      psi: {
        some: { avg10: 1.5, avg60: 0.25, avg300: 0, totalNs: 4_200_000n },
        full: { avg10: 0, avg60: 0, avg300: 0, totalNs: 7000n },
      },
    });
    expect(s.memory).toEqual({
      usageBytes: 52428800n, workingSetBytes: 41943040n, rssBytes: 31457280n, cacheBytes: 20971520n,
      pageFaults: 1234n, majorPageFaults: 5n, limitBytes: 104857600n, availableBytes: 62914560n,
      failcnt: 3n, oomKills: 1n,
    });
    expect(s.swap).toEqual({ usageBytes: 4096n });
    expect(s.pids).toEqual({ current: 7n });
    expect(s.io).toBeUndefined();

    // Working set never goes negative, and "max" memory means no limit.
    await writeFile(join(dir, 'memory.stat'), 'anon 0\nfile 0\ninactive_file 99999999\npgfault 0\npgmajfault 0\n');
    await writeFile(join(dir, 'memory.max'), 'max\n');
    const s2 = await readCgroupStats(layout, '/kubepods.slice/crib-c1.scope');
    expect(s2.memory!.workingSetBytes).toBe(0n);
    expect(s2.memory!.limitBytes).toBeUndefined();
    expect(s2.memory!.availableBytes).toBeUndefined();
  });
});

/** A mount table as the kernel writes it: the root's tmpfs, then one line per [name, fstype, super options] under it. */
function fabricatedMountinfo(root: string, mounts: [string, string, string][]): string {
  const esc = (p: string) => p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return [
    `22 1 0:21 / / rw,relatime - ext4 /dev/vda1 rw`,
    `31 22 0:28 / ${esc(root)} rw,relatime - tmpfs tmpfs rw,mode=755`,
    ...mounts.map(([name, fstype, opts], i) => `${40 + i} 31 0:${40 + i} / ${esc(`${root}/${name}`)} rw,nosuid shared:${9 + i} - ${fstype} ${fstype} ${opts}`),
  ].join('\n') + '\n';
}

describe('cgroup v1 prepared tree', () => {
  it('finds co-mounted hierarchies and parses v1 files exactly', async () => {
    const root = await mkdtemp(join(tmpdir(), 'crib-stats-v1-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const rel = '/kubepods/pod1/crib-c1';
    const put = async (hier: string, name: string, text: string) => {
      await mkdir(join(root, hier, rel), { recursive: true });
      await writeFile(join(root, hier, rel, name), text);
    };
    await put('cpu,cpuacct', 'cpuacct.usage', '2500000000\n');
    await put('cpu,cpuacct', 'cpuacct.stat', 'user 150\nsystem 50\n');
    await put('cpu,cpuacct', 'cpu.stat', 'nr_periods 4\nnr_throttled 1\nthrottled_time 9000\n');
    await put('memory', 'memory.usage_in_bytes', '30000000\n');
    await put('memory', 'memory.stat',
      'cache 1\nrss 2\ntotal_cache 8000000\ntotal_rss 20000000\ntotal_inactive_file 5000000\ntotal_pgfault 77\ntotal_pgmajfault 2\n');
    await put('memory', 'memory.limit_in_bytes', '9223372036854771712\n');
    await put('memory', 'memory.failcnt', '0\n');
    await put('memory', 'memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    await put('memory', 'memory.memsw.usage_in_bytes', '30004096\n');
    await put('memory', 'memory.memsw.limit_in_bytes', '9223372036854771712\n');
    await put('pids', 'pids.current', '3\n');
    await put('pids', 'pids.max', '100\n');
    const layout = {
      ...cgroupLayout({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v1' }),
      mountinfo: fabricatedMountinfo(root, [['cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'], ['memory', 'cgroup', 'rw,memory'], ['pids', 'cgroup', 'rw,pids']]),
    };
    const s = await readCgroupStats(layout, rel);
    expect(s.cpu).toEqual({
      usageNs: 2_500_000_000n, userNs: 1_500_000_000n, systemNs: 500_000_000n,
      periods: 4n, throttledPeriods: 1n, throttledNs: 9000n,
    });
    expect(s.memory).toEqual({
      usageBytes: 30000000n, workingSetBytes: 25000000n, rssBytes: 20000000n, cacheBytes: 8000000n,
      pageFaults: 77n, majorPageFaults: 2n, failcnt: 0n, oomKills: 2n,
    });
    expect(s.swap).toEqual({ usageBytes: 4096n });
    expect(s.pids).toEqual({ current: 3n, limit: 100n });
  });
});

describe('cgroup v1 hierarchies come from the mount table', () => {
  it('reads a controller from its cgroup mount, not from a plain directory whose name lists it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'crib-stats-v1 mounts-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const rel = '/kubepods/pod1/crib-c1';
    const put = async (hier: string, name: string, text: string) => {
      await mkdir(join(root, hier, rel), { recursive: true });
      await writeFile(join(root, hier, rel, name), text);
    };
    // A stray directory made by hand: it sorts before "cpuacct", and its name lists cpuacct and
    // memory; so does a tmpfs mounted as "memory,pids", which is no cgroup either.
    await put('cpu,cpuacct', 'cpuacct.usage', '999\n');
    await put('cpu,cpuacct,memory', 'memory.usage_in_bytes', '999\n');
    await put('memory,pids', 'pids.current', '999\n');
    await put('cpuacct', 'cpuacct.usage', '2500000000\n');
    await put('memory', 'memory.usage_in_bytes', '30000000\n');
    await put('memory', 'memory.stat', 'total_inactive_file 5000000\n');
    await put('pids', 'pids.current', '3\n');
    const layout = {
      ...cgroupLayout({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v1' }),
      mountinfo: fabricatedMountinfo(root, [
        ['cpu', 'cgroup', 'rw,cpu'], ['cpuacct', 'cgroup', 'rw,cpuacct'], ['memory,pids', 'tmpfs', 'rw,memory,pids'],
        ['memory', 'cgroup', 'rw,memory'], ['pids', 'cgroup', 'rw,pids'], ['unified', 'cgroup2', 'rw'],
      ]),
    };
    const s = await readCgroupStats(layout, rel, { scope: { metrics: false, pids: true } });
    expect(s.cpu?.usageNs).toBe(2_500_000_000n);
    expect(s.memory?.usageBytes).toBe(30_000_000n);
    expect(s.pids?.current).toBe(3n);
  });

  it('takes the mount on top when another filesystem is mounted over a hierarchy', async () => {
    const root = await mkdtemp(join(tmpdir(), 'crib-stats-v1-top-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const rel = '/c1';
    await mkdir(join(root, 'pids', rel), { recursive: true });
    await writeFile(join(root, 'pids', rel, 'pids.current'), '3\n');
    const hidden = fabricatedMountinfo(root, [['pids', 'cgroup', 'rw,pids'], ['pids', 'tmpfs', 'rw']]);
    const layout = { ...cgroupLayout({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v1' }), mountinfo: hidden };
    await expect(readCgroupStats(layout, rel)).rejects.toThrow(NotFoundError);
  });
});
