// StatsCollector over a prepared cgroup v2 tree (unprivileged): a cgroup's reading is reused
// for a second, with its own timestamp and CPU rate, and read anew after.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cgroupLayout } from './cgroup-path.js';
import { StatsCollector, type ContainerSubject } from './stats-collector.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-collector-'));
  await mkdir(join(root, 'pods', 'c1'), { recursive: true });
  await usage(1_000_000);
  await writeFile(join(root, 'pods', 'c1', 'memory.current'), '4096\n');
  await writeFile(join(root, 'pods', 'c1', 'memory.stat'), 'anon 4096\nfile 0\ninactive_file 0\npgfault 1\npgmajfault 0\n');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const usage = (usec: number) => writeFile(join(root, 'pods', 'c1', 'cpu.stat'), `usage_usec ${usec}\nuser_usec ${usec}\nsystem_usec 0\n`);
const subject: ContainerSubject = { attributes: { id: 'c1', metadata: { name: 'c1', attempt: 0 } }, cgroupsPath: '/pods/c1' };
const layout = () => cgroupLayout({ CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v2' });
const cpuOf = async (c: StatsCollector) => (await c.containerStats(subject)).cpu!;

describe('StatsCollector cgroup readings', () => {
  it('reuses a reading within cgroupTtlMs, timestamp and all, and reads anew after it', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 300 });
    const first = await cpuOf(c);
    expect(first.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    await usage(2_000_000);
    const again = await cpuOf(c);
    expect(again.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    expect(again.timestamp).toBe(first.timestamp);
    await new Promise((r) => setTimeout(r, 350));
    const fresh = await cpuOf(c);
    expect(fresh.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    expect(BigInt(String(fresh.timestamp))).toBeGreaterThan(BigInt(String(first.timestamp)));
    c.close();
  });

  it('keeps the CPU rate of a reused reading', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 200, minRateWindowNs: 100_000_000n });
    await cpuOf(c);
    await new Promise((r) => setTimeout(r, 250));
    await usage(1_100_000);
    const rated = await cpuOf(c);
    expect(rated.usageNanoCores).not.toBeNull();
    expect((await cpuOf(c)).usageNanoCores).toEqual(rated.usageNanoCores);
    c.close();
  });

  it('reads every time with cgroupTtlMs 0', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 0 });
    await cpuOf(c);
    await usage(3_000_000);
    expect((await cpuOf(c)).usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    c.close();
  });
});
