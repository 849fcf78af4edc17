// StatsCollector over a prepared cgroup v2 tree (unprivileged): a cgroup's reading is reused
// for a second, with its own timestamp and CPU rate, and read anew after.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nowNs } from '../time.js';
import { cgroupLayout } from './cgroup-path.js';
import { KernelFileReader, type DirFiles } from './kernel-file-reader.js';
import { StatsCollector, type ContainerSubject, type PodSubject } from './stats-collector.js';

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
/** The pod around c1, with a cgroup of its own: its containers are read with c1's own scope. */
const podWithCgroup: PodSubject = {
  attributes: { id: 'p1', metadata: { name: 'p1', uid: 'u', namespace: 'n', attempt: 0 } }, cgroupParent: '/pods', containers: [subject],
};
const podFiles = async () => {
  await writeFile(join(root, 'pods', 'cpu.stat'), 'usage_usec 9000000\n');
  await writeFile(join(root, 'pods', 'memory.current'), '8192\n');
  await writeFile(join(root, 'pods', 'memory.stat'), 'anon 8192\nfile 0\ninactive_file 0\npgfault 1\npgmajfault 0\n');
};

describe('StatsCollector cgroup readings', () => {
  it('serves a reading to each kind of caller once: another kind reuses it, timestamp and all; the same kind gets a new one', async () => {
    await podFiles();
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 5000 });
    const first = await cpuOf(c);
    expect(first.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    await usage(2_000_000);
    // A pod listing (another kind of caller) shares the container's reading.
    const [pod] = await c.listPodSandboxStats([podWithCgroup]);
    expect(pod!.linux!.containers![0]!.cpu).toEqual(first);
    // The same kind asking again, well within cgroupTtlMs, gets a new reading (crictl stats
    // compares two samples a second apart and refuses equal timestamps).
    const again = await cpuOf(c);
    expect(again.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    expect(BigInt(String(again.timestamp))).toBeGreaterThan(BigInt(String(first.timestamp)));
    await usage(3_000_000);
    expect((await cpuOf(c)).usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    c.close();
  });

  it('takes a pod\'s first readings and CPU samples before any listing: the first listings have CPU rates', async () => {
    await podFiles();
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 100, minRateWindowNs: 100_000_000n });
    await c.takeFirstReadings([podWithCgroup]);
    await usage(3_000_000);
    await writeFile(join(root, 'pods', 'cpu.stat'), 'usage_usec 12000000\n');
    await new Promise((r) => setTimeout(r, 200));
    const [pod] = await c.listPodSandboxStats([podWithCgroup]);
    expect(BigInt(pod!.linux!.cpu!.usageNanoCores!.value as string)).toBeGreaterThan(0n);
    expect(BigInt(pod!.linux!.containers![0]!.cpu!.usageNanoCores!.value as string)).toBeGreaterThan(0n);
    // Served to no kind of caller: a container listing still gets a reading of its own.
    const [ctr] = await c.listContainerStats([subject]);
    expect(ctr!.cpu!.usageNanoCores).not.toBeNull();
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

  it('serves a reading to another kind of caller for up to 2 s by default', async () => {
    await podFiles();
    // Two collectors over the same files: one's pod listing comes at 1.3 s, the other's at 2.1 s.
    const early = new StatsCollector({ layout: layout() });
    const late = new StatsCollector({ layout: layout() });
    const [first, firstLate] = [await cpuOf(early), await cpuOf(late)];
    await usage(2_000_000);
    await new Promise((r) => setTimeout(r, 1300));
    const [pod] = await early.listPodSandboxStats([podWithCgroup]);
    expect(pod!.linux!.containers![0]!.cpu!.timestamp).toBe(first.timestamp);
    await new Promise((r) => setTimeout(r, 800));
    const [later] = await late.listPodSandboxStats([podWithCgroup]);
    expect(later!.linux!.containers![0]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    expect(later!.linux!.containers![0]!.cpu!.timestamp).not.toBe(firstLate.timestamp);
    early.close();
    late.close();
  });

  it('builds a listing answered from cached readings in turns of the event loop, not in one task', async () => {
    await podFiles();
    // Many pods of one container each, all in one pod cgroup: once the pod listing has read
    // them, the container listing (another kind of caller) finds every reading cached and would
    // resolve in microtasks alone.
    const many: ContainerSubject[] = [];
    for (let k = 0; k < 500; k++) {
      const dir = join(root, 'pods', `m${k}`);
      await mkdir(dir);
      await writeFile(join(dir, 'cpu.stat'), 'usage_usec 1000\nuser_usec 1000\nsystem_usec 0\n');
      await writeFile(join(dir, 'memory.current'), '4096\n');
      await writeFile(join(dir, 'memory.stat'), 'anon 4096\nfile 0\ninactive_file 0\npgfault 1\npgmajfault 0\n');
      many.push({ attributes: { id: `m${k}`, metadata: { name: `m${k}`, attempt: 0 } }, cgroupsPath: `/pods/m${k}` });
    }
    const pods = many.map((c, k): PodSubject => ({ ...podWithCgroup, attributes: { ...podWithCgroup.attributes, id: `p${k}` }, containers: [c] }));
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 60_000 });
    await c.listPodSandboxStats(pods);
    let turns = 0;
    let listing = true;
    const tick = () => {
      turns++;
      if (listing) setImmediate(tick);
    };
    setImmediate(tick);
    const stats = await c.listContainerStats(many);
    listing = false;
    expect(stats.map((s) => s.attributes!.id)).toEqual(many.map((m) => m.attributes.id));
    expect(stats[7]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '1000000' });
    // The listing gave the other immediate at least its first turn before it resolved (its
    // slices are each-bounded.test.ts's); with Promise.all it resolved first, in one task.
    expect(turns).toBeGreaterThanOrEqual(1);
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

describe('StatsCollector background refresh', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const podSubject = (): PodSubject => ({
    attributes: { id: 'p1', metadata: { name: 'p1', uid: 'u', namespace: 'n', attempt: 0 } },
    cgroupParent: '/pods',
    containers: [subject],
  });
  const podUsage = (usec: number) => writeFile(join(root, 'pods', 'cpu.stat'), `usage_usec ${usec}\n`);

  it('reads a periodic listing\'s cgroups just before it comes, and stops once the listings stop', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 250, leadMs: 150, followUps: 1, followUpMs: 100, presumedPeriodMs: 0 });
    await c.listContainerStats([subject], { watch: () => [subject] });
    expect(c.refresherActive).toBe(false); // one listing, none presumed: no period yet
    await sleep(400);
    await c.listContainerStats([subject], { watch: () => [subject] }); // period 400 ms: the next is due in 400
    expect(c.refresherActive).toBe(true);
    await usage(2_000_000);
    await sleep(400);
    const before = BigInt(nowNs());
    const [s] = await c.listContainerStats([subject]);
    // Read after the change, before this listing came: by the refresher, not on demand.
    expect(s!.cpu!.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    expect(BigInt(String(s!.cpu!.timestamp))).toBeLessThan(before);
    expect(before - BigInt(String(s!.cpu!.timestamp))).toBeLessThan(250_000_000n);
    // The unwatched listing does not count: the due refresh and its one follow-up run, then none.
    await sleep(400);
    expect(c.refresherActive).toBe(false);
    c.close();
  });

  it('reads ahead of a first listing\'s successor on the presumed period, once', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 250, leadMs: 150, followUps: 1, followUpMs: 100, presumedPeriodMs: 400 });
    await c.listContainerStats([subject], { watch: () => [subject] });
    expect(c.refresherActive).toBe(true); // the second listing is presumed 400 ms later
    await usage(3_000_000);
    await sleep(400);
    const before = BigInt(nowNs());
    const [s] = await c.listContainerStats([subject]);
    // Read after the change, before this listing came: by the refresher, not on demand.
    expect(s!.cpu!.usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    expect(BigInt(String(s!.cpu!.timestamp))).toBeLessThan(before);
    expect(before - BigInt(String(s!.cpu!.timestamp))).toBeLessThan(250_000_000n);
    // A presumption has no follow-ups: the refresher stops after its one refresh.
    expect(c.refresherActive).toBe(false);
    c.close();
  });

  it('serves a listing whose period is only presumed no reading older than the cache\'s bound', async () => {
    // The caller came back after a pause (longer than maxPeriodMs): no period is measured, and
    // the presumed one's refresh has not run, so the first listing's readings are too old for it.
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 100, leadMs: 50, maxPeriodMs: 200, presumedPeriodMs: 5000 });
    await c.listContainerStats([subject], { watch: () => [subject] });
    await usage(4_000_000);
    await sleep(300);
    const [s] = await c.listContainerStats([subject], { watch: () => [subject] });
    expect(s!.cpu!.usageCoreNanoSeconds).toEqual({ value: '4000000000' });
    c.close();
  });

  it('walks a periodic listing\'s writable layers before it comes: the listing serves that walk', async () => {
    const upper = join(root, 'upper');
    await mkdir(upper);
    const withLayer: ContainerSubject = { ...subject, writableLayer: { dir: upper, mountpoint: root } };
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 300, leadMs: 200, fsTtlMs: 350, followUps: 0 });
    await c.listContainerStats([withLayer], { watch: () => [withLayer] });
    await sleep(400);
    await c.listContainerStats([withLayer], { watch: () => [withLayer] }); // period 400 ms: refresh due in 200
    await writeFile(join(upper, 'new'), 'x');
    await sleep(400);
    const before = BigInt(nowNs());
    const [s] = await c.listContainerStats([withLayer]);
    // The file made after the last listing is counted: walked by the refresher, before this
    // listing came (a walk started by the listing would be served only to the next one).
    expect(s!.writableLayer!.inodesUsed).toEqual({ value: '2' });
    expect(BigInt(String(s!.writableLayer!.timestamp))).toBeLessThan(before);
    // Walked before the cgroup was read: the readings end the refresh, so no walk runs into
    // the listing.
    expect(BigInt(String(s!.cpu!.timestamp))).toBeGreaterThan(BigInt(String(s!.writableLayer!.timestamp)));
    expect(BigInt(String(s!.cpu!.timestamp))).toBeLessThan(before);
    c.close();
  });

  it('starts no walk behind a layer result a whole listing serves past its TTL when a read-ahead comes before the next one', async () => {
    const upper = join(root, 'upper');
    await mkdir(upper);
    const withLayer: ContainerSubject = { ...subject, writableLayer: { dir: upper, mountpoint: root } };
    // The first listing's presumed successor is 5 s away: its read-ahead does not run here.
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 300, fsTtlMs: 300, presumedPeriodMs: 5000 });
    const walked = (await c.containerStats(withLayer)).writableLayer!;
    expect(walked.inodesUsed).toEqual({ value: '1' });
    await writeFile(join(upper, 'new'), 'x');
    await sleep(400);
    // Past its TTL, the walk is served as it is (with its own timestamp) to the listing...
    const [listed] = await c.listContainerStats([withLayer], { watch: () => [withLayer] });
    expect(listed!.writableLayer).toEqual(walked);
    // ...and nothing walked the layer behind it: a single container's stats, asked well after a
    // walk of this one-file layer would have ended, still gets that walk (and starts one itself).
    await sleep(200);
    expect((await c.containerStats(withLayer)).writableLayer).toEqual(walked);
    // That call's own walk behind is served to a later one, once it has ended.
    let later = walked;
    for (let i = 0; i < 100 && later.inodesUsed?.value === '1'; i++) {
      await sleep(50);
      later = (await c.containerStats(withLayer)).writableLayer!;
    }
    expect(later.inodesUsed).toEqual({ value: '2' });
    c.close();
  });

  it('reads ahead of a pod listing and a container listing that come one right after the other in one pass', async () => {
    await podUsage(1_000_000);
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 500, leadMs: 300, followUps: 0 });
    const lists = async () => {
      await c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
      await sleep(100);
      await c.listContainerStats([subject], { watch: () => [subject] });
    };
    await lists();
    await sleep(500);
    await lists(); // periods 600 ms: the pods' refresh is due in 300 ms, the containers' 100 ms later
    await sleep(500);
    const before = BigInt(nowNs());
    const [s] = await c.listPodSandboxStats([podSubject()]);
    // The pod's cgroup was read ahead after its container's (one pass): served, not read again.
    expect(BigInt(String(s!.linux!.cpu!.timestamp))).toBeLessThan(before);
    expect(BigInt(String(s!.linux!.cpu!.timestamp))).toBeGreaterThanOrEqual(BigInt(String(s!.linux!.containers![0]!.cpu!.timestamp)));
    c.close();
  });

  it('does not watch a filtered listing', async () => {
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 100, leadMs: 50 });
    await c.listContainerStats([subject]);
    await sleep(150);
    await c.listContainerStats([subject]);
    expect(c.refresherActive).toBe(false);
    c.close();
  });

  it('never reports a pod\'s CPU time below its containers\' (a pod reading behind them is read again)', async () => {
    await podUsage(1_000_000);
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 1000, leadMs: 900, followUps: 0 });
    // Container listings 1.05 s apart: the next container refresh is due 150 ms after the second.
    await c.listContainerStats([subject], { watch: () => [subject] });
    await sleep(1050);
    await c.listContainerStats([subject], { watch: () => [subject] });
    const first = await c.podSandboxStats(podSubject()); // the pod cgroup, read now and cached
    expect(first.linux!.cpu!.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    // The container uses more CPU; the refresher reads it after the pod's cached reading.
    await usage(3_000_000);
    await podUsage(3_000_000);
    await sleep(300);
    const s = await c.podSandboxStats(podSubject());
    const container = s.linux!.containers![0]!.cpu!;
    expect(container.usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    expect(BigInt(String(container.timestamp))).toBeGreaterThan(BigInt(String(first.linux!.cpu!.timestamp)));
    expect(BigInt(String(s.linux!.cpu!.timestamp))).toBeGreaterThanOrEqual(BigInt(String(container.timestamp)));
    expect(s.linux!.cpu!.usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    c.close();
  });

  /** A reader whose reads wait while `held` is set, and counts them. */
  class HeldReader extends KernelFileReader {
    reads = 0;
    held: Promise<void> | undefined;
    override async read(dir: string, name: string, opts?: { list?: boolean }): Promise<string | undefined> {
      this.reads++;
      if (this.held) await this.held;
      return super.read(dir, name, opts);
    }
    override async readDirs(groups: readonly DirFiles[]): Promise<((string | undefined)[] | undefined)[]> {
      this.reads++;
      if (this.held) await this.held;
      return super.readDirs(groups);
    }
  }
  /** Resolves with the value, or with 'waited' when `p` takes longer than `ms`. */
  const within = <T>(p: Promise<T>, ms: number) =>
    Promise.race([p, new Promise<'waited'>((r) => setTimeout(() => r('waited'), ms))]);

  it('answers a listing that comes while its refresh is running from the last readings, without waiting for it or reading', async () => {
    await podUsage(1_000_000);
    const upper = join(root, 'upper');
    await mkdir(upper);
    const withLayer: ContainerSubject = { ...subject, writableLayer: { dir: upper, mountpoint: root } };
    const pod = (): PodSubject => ({ ...podSubject(), containers: [withLayer] });
    const reader = new HeldReader();
    const c = new StatsCollector({ layout: layout(), reader, cgroupTtlMs: 200, leadMs: 100, followUps: 0 });
    await c.listContainerStats([withLayer], { watch: () => [withLayer] });
    await c.listPodSandboxStats([pod()], { watch: () => [pod()] });
    await sleep(300);
    await c.listContainerStats([withLayer], { watch: () => [withLayer] });
    // Periods 300 ms: the refresh is due in 200.
    const last = await c.listPodSandboxStats([pod()], { watch: () => [pod()] });
    let release!: () => void;
    reader.held = new Promise<void>((r) => {
      release = r;
    });
    await usage(5_000_000);
    await sleep(320); // the refresh started ~120 ms ago; its reads are held; the readings are 320 ms old
    expect(c.refresherActive).toBe(true);
    const readsBefore = reader.reads;
    const cl = await within(c.listContainerStats([withLayer]), 1000);
    const ps = await within(c.listPodSandboxStats([pod()]), 1000);
    expect(cl).not.toBe('waited');
    expect(ps).not.toBe('waited');
    const [cs] = cl as Awaited<ReturnType<StatsCollector['listContainerStats']>>;
    // The last readings, timestamps and all: not the refresh's, not read by the listing.
    expect(reader.reads).toBe(readsBefore);
    expect(cs!.cpu!.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    expect(cs!.cpu!.timestamp).toBe(last[0]!.linux!.containers![0]!.cpu!.timestamp);
    const [p] = ps as Awaited<ReturnType<StatsCollector['listPodSandboxStats']>>;
    expect(p!.linux!.cpu!.timestamp).toBe(last[0]!.linux!.cpu!.timestamp);
    release();
    reader.held = undefined;
    await sleep(100);
    // Once the refresh is in, its readings are served.
    const [after] = await c.listContainerStats([withLayer]);
    expect(after!.cpu!.usageCoreNanoSeconds).toEqual({ value: '5000000000' });
    c.close();
  });

  it('builds (and prepares) each container\'s stats when the read-ahead\'s reading lands; the listings that use that reading send that object', async () => {
    await podUsage(1_000_000);
    const prepared: object[] = [];
    const c = new StatsCollector({
      layout: layout(), cgroupTtlMs: 400, leadMs: 200, followUps: 0, minRateWindowNs: 100_000_000n,
      catchUpMs: 10_000, // no catch-up: only the forecast's refresh builds
      prepare: (s) => {
        prepared.push(s);
        return s;
      },
    });
    const lists = async () => {
      await c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
      return c.listContainerStats([subject], { watch: () => [subject] });
    };
    await lists();
    await sleep(450);
    await lists(); // periods 450 ms: the refresh is due in 250
    expect(prepared).toHaveLength(0); // built while the listings waited: not prepared
    await usage(2_000_000);
    await sleep(400);
    expect(prepared).toHaveLength(1);
    const [s] = await c.listContainerStats([{ ...subject, attributes: { ...subject.attributes } }]);
    const [p] = await c.listPodSandboxStats([podSubject()]);
    expect(s).toBe(prepared[0]);
    expect(p!.linux!.containers![0]).toBe(prepared[0]);
    expect(s!.cpu!.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    // Its rate is the one the listing computes from that reading.
    expect(s!.cpu!.usageNanoCores).not.toBeNull();
    c.close();
  });

  it('builds (and prepares) each pod\'s stats when the read-ahead\'s pod reading lands; the pod listing that uses those readings sends that object', async () => {
    await podUsage(1_000_000);
    const prepared: object[] = [];
    const preparedPods: object[] = [];
    const c = new StatsCollector({
      layout: layout(), cgroupTtlMs: 400, leadMs: 200, followUps: 0, minRateWindowNs: 100_000_000n,
      catchUpMs: 10_000, // no catch-up: only the forecast's refresh builds
      prepare: (s) => {
        prepared.push(s);
        return s;
      },
      preparePod: (s) => {
        preparedPods.push(s);
        return s;
      },
    });
    const pod = podSubject(); // its attributes' parts as the daemon's records hold them: the same objects
    await c.listPodSandboxStats([pod], { watch: () => [pod] });
    await sleep(450);
    await c.listPodSandboxStats([pod], { watch: () => [pod] }); // period 450 ms: the refresh is due in 250
    expect(preparedPods).toHaveLength(0); // built while the listings waited: not prepared
    await usage(2_000_000);
    await podUsage(3_000_000);
    await sleep(400);
    expect(preparedPods).toHaveLength(1);
    const [p] = await c.listPodSandboxStats([{ ...pod, attributes: { ...pod.attributes } }]);
    expect(p).toBe(preparedPods[0]);
    expect(p!.linux!.containers![0]).toBe(prepared[0]);
    expect(p!.linux!.cpu!.usageCoreNanoSeconds).toEqual({ value: '3000000000' });
    expect(p!.linux!.containers![0]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '2000000000' });
    // Its rate is the one the listing computes from that reading (the same object again after).
    expect(p!.linux!.cpu!.usageNanoCores).not.toBeNull();
    // Pod stats asked for again: a newer reading, built anew, not the prepared object.
    const again = await c.podSandboxStats(pod);
    expect(again).not.toBe(p);
    expect(BigInt(String(again.linux!.cpu!.timestamp))).toBeGreaterThan(BigInt(String(p!.linux!.cpu!.timestamp)));
    c.close();
  });

  it('refreshes the rest of a listing whose one subject has a cgroup path that does not resolve, and stops as usual', async () => {
    const bad: ContainerSubject = { attributes: { id: 'bad', metadata: { name: 'bad', attempt: 0 } }, cgroupsPath: '/pods/../x' };
    const c = new StatsCollector({ layout: layout(), cgroupTtlMs: 200, leadMs: 100, followUps: 0 });
    await expect(c.listContainerStats([subject, bad], { watch: () => [subject, bad] })).rejects.toThrow('".." is not allowed');
    await sleep(250);
    await expect(c.listContainerStats([subject, bad], { watch: () => [subject, bad] })).rejects.toThrow(); // refresh due in 150 ms
    await usage(4_000_000);
    await sleep(250);
    expect(c.refresherActive).toBe(false);
    const before = BigInt(nowNs());
    const [s] = await c.listContainerStats([subject]);
    expect(s!.cpu!.usageCoreNanoSeconds).toEqual({ value: '4000000000' });
    expect(BigInt(String(s!.cpu!.timestamp))).toBeLessThan(before); // read by the refresh
    c.close();
  });

  it('answers a periodic listing that comes before its read-ahead from the last readings, reading nothing while it waits', async () => {
    await podUsage(1_000_000);
    const reader = new HeldReader();
    const c = new StatsCollector({ layout: layout(), reader, cgroupTtlMs: 200, leadMs: 10, followUps: 0, catchUpMs: 10_000 }); // no catch-up
    await c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
    await sleep(300);
    const last = await c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] }); // period 300 ms: the refresh is due in 290
    await usage(7_000_000);
    await sleep(230); // the readings are past cgroupTtlMs; the read-ahead has not run
    const reads = reader.reads;
    const [p] = await c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
    expect(reader.reads).toBe(reads);
    expect(p!.linux!.containers![0]!.cpu!.timestamp).toBe(last[0]!.linux!.containers![0]!.cpu!.timestamp);
    expect(p!.linux!.cpu!.timestamp).toBe(last[0]!.linux!.cpu!.timestamp);
    // An unwatched listing (another caller) is read for, as before.
    const [other] = await c.listContainerStats([subject]);
    expect(other!.cpu!.usageCoreNanoSeconds).toEqual({ value: '7000000000' });
    c.close();
  });

  it('catches up after a periodic listing that came before its read-ahead: the next one reads nothing while it waits', async () => {
    await podUsage(1_000_000);
    const reader = new HeldReader();
    const c = new StatsCollector({ layout: layout(), reader, cgroupTtlMs: 200, maxStaleMs: 500, leadMs: 10, followUps: 0, catchUpMs: 50 });
    const list = () => c.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
    await list();
    await sleep(400);
    await list(); // period 400 ms: served the first listing's readings, 400 ms old; a catch-up in 50
    await usage(7_000_000);
    await podUsage(8_000_000);
    await sleep(300);
    // Before the forecast's refresh (due 390 ms after the last listing) and with the first
    // readings 700 ms old, past maxStaleMs: without the catch-up this listing reads while it waits.
    const reads = reader.reads;
    const before = BigInt(nowNs());
    const [p] = await list();
    expect(reader.reads).toBe(reads);
    expect(p!.linux!.containers![0]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '7000000000' });
    expect(p!.linux!.cpu!.usageCoreNanoSeconds).toEqual({ value: '8000000000' });
    expect(BigInt(String(p!.linux!.cpu!.timestamp))).toBeLessThan(before);
    c.close();
  });

  it('carries the listings\' periods over to the next collector (a daemon restart): its first listing reads nothing while it waits', async () => {
    await podUsage(1_000_000);
    const opts = { layout: layout(), cgroupTtlMs: 300, maxStaleMs: 400, leadMs: 150, followUps: 0, catchUpMs: 10_000 };
    const old = new StatsCollector(opts);
    const oldList = () => old.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
    await oldList();
    await sleep(600);
    await oldList(); // period 600 ms
    const saved = old.listingPeriods();
    expect(saved.pods?.periodMs).toBeGreaterThanOrEqual(600);
    expect(saved.containers).toBeUndefined(); // never listed: nothing to hand over
    old.close();

    await sleep(100); // the restart
    const reader = new HeldReader();
    const next = new StatsCollector({ ...opts, reader });
    expect(next.resumeListings(saved, { containers: () => [], pods: () => [podSubject()] })).toEqual(['pods']);
    await usage(7_000_000);
    await podUsage(8_000_000);
    await sleep(500); // the caller's next tick, 600 ms after its last listing
    const reads = reader.reads;
    expect(reads).toBeGreaterThan(0); // read ahead of it
    const before = BigInt(nowNs());
    const [p] = await next.listPodSandboxStats([podSubject()], { watch: () => [podSubject()] });
    expect(reader.reads).toBe(reads);
    expect(p!.linux!.containers![0]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '7000000000' });
    expect(BigInt(String(p!.linux!.cpu!.timestamp))).toBeLessThan(before);
    next.close();
  });

  it('reads ahead of what the next periodic listing will ask for: pods and containers started since the last one too', async () => {
    await podUsage(2_000_000); // at least its containers' together
    await mkdir(join(root, 'pods', 'c2'));
    await writeFile(join(root, 'pods', 'c2', 'cpu.stat'), 'usage_usec 5000\n');
    await writeFile(join(root, 'pods', 'c2', 'memory.current'), '4096\n');
    const c2: ContainerSubject = { attributes: { id: 'c2', metadata: { name: 'c2', attempt: 0 } }, cgroupsPath: '/pods/c2' };
    const running = [subject];
    const containers = () => [...running];
    const pods = (): PodSubject[] => [{ ...podSubject(), containers: [...running] }];
    const reader = new HeldReader();
    const c = new StatsCollector({ layout: layout(), reader, cgroupTtlMs: 250, leadMs: 150, followUps: 0 });
    const lists = async () => [await c.listPodSandboxStats(pods(), { watch: pods }), await c.listContainerStats(containers(), { watch: containers })] as const;
    await lists();
    await sleep(400);
    await lists(); // periods 400 ms: the refresh is due in 250
    running.push(c2); // started after the last listings
    await sleep(400);
    const reads = reader.reads;
    const before = BigInt(nowNs());
    const [[p], cs] = await lists();
    // c2 was read by the refresh, before these listings came: they read nothing while they waited.
    expect(reader.reads).toBe(reads);
    expect(p!.linux!.containers!.map((s) => s.attributes!.id)).toEqual(['c1', 'c2']);
    expect(cs.map((s) => s.attributes!.id)).toEqual(['c1', 'c2']);
    for (const s of [...p!.linux!.containers!, ...cs]) expect(BigInt(String(s.cpu!.timestamp))).toBeLessThan(before);
    c.close();
  });
});

describe('StatsCollector writable layers', () => {
  it('leaves out a writable layer whose walk fails, and lists its container and the others', async () => {
    const upper = join(root, 'upper');
    await mkdir(upper);
    await writeFile(join(upper, 'f'), 'x');
    // A path no walk can start from, whoever runs the test: each lookup of `loop` meets itself.
    await symlink('loop', join(root, 'loop'));
    const good: ContainerSubject = { ...subject, writableLayer: { dir: upper, mountpoint: root } };
    const bad: ContainerSubject = {
      ...subject, attributes: { id: 'c2', metadata: { name: 'c2', attempt: 0 } }, writableLayer: { dir: join(root, 'loop', 'upper'), mountpoint: root },
    };
    const c = new StatsCollector({ layout: layout() });
    const listed = await c.listContainerStats([good, bad]);
    expect(listed.map((s) => s.attributes!.id)).toEqual(['c1', 'c2']);
    expect(listed[0]!.writableLayer!.inodesUsed).toEqual({ value: '2' });
    expect(listed[1]!.writableLayer ?? undefined).toBeUndefined();
    expect(listed[1]!.cpu!.usageCoreNanoSeconds).toEqual({ value: '1000000000' });
    c.close();
  });
});
