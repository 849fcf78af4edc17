// Overlay snapshots against the real kernel (root: overlay mounts, device nodes from layers).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { unpackLayer } from '../../src/image/unpack/unpack-layer.js';
import { buildTar, gzipLayer, maliciousLayers, sha256, type FixtureEntry } from '../../test-support/tar-fixtures.js';
import { diskUsage } from '../../src/sys/disk-usage.js';
import { unmountOverlay } from '../../src/snapshot/overlay-mount.js';
import { chainIds } from '../../src/digest/chain-id.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';

let root: string;
let snaps: Snapshotter;
const mounted: string[] = [];
let n = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), `crib-snap-${process.pid}-`));
  snaps = new Snapshotter(root);
  await snaps.load();
});
afterEach(async () => {
  for (const m of mounted.splice(0)) await unmountOverlay(m);
});
afterAll(async () => {
  for (const m of mounted.splice(0)) await unmountOverlay(m);
  rmSync(root, { recursive: true, force: true });
});

/** Write `entries` as a gzip layer blob; returns its path and diffID. */
async function layer(entries: FixtureEntry[]): Promise<{ blob: string; diffId: string }> {
  const tar = await buildTar(entries);
  const blob = join(root, `blob-${n++}.tar.gz`);
  writeFileSync(blob, gzipLayer(tar));
  return { blob, diffId: sha256(tar) };
}

/** Commit `layers` bottom-up; returns their chain IDs. */
async function commitChain(layers: { blob: string; diffId: string }[]): Promise<string[]> {
  const ids = chainIds(layers.map((l) => l.diffId));
  for (let i = 0; i < layers.length; i += 1) {
    await snaps.ensureLayer(ids[i]!, ids[i - 1], async (dir) => {
      const r = await unpackLayer(layers[i]!.blob, dir);
      return { diffId: r.diffId, size: r.fileBytes };
    });
  }
  return ids;
}

function tmpEntries(): string[] {
  return readdirSync(snaps.dir).filter((e) => e.startsWith('tmp-'));
}

describe('Snapshotter', () => {
  it('a writable snapshot given publishAfter appears under its key only once that resolves; a rejection leaves nothing', async () => {
    const [chain] = await commitChain([await layer([{ name: 'f', body: 'x' }])]);
    const key = `pub-${process.pid}`;
    const activeDir = join(snaps.dir, 'active');
    let publish!: () => void;
    const prepared = snaps.prepare(key, chain!, { publishAfter: new Promise<void>((resolve) => (publish = resolve)) });
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(activeDir, key))).toBe(false);
    publish();
    const prep = await prepared;
    expect(existsSync(prep.upperdir)).toBe(true);
    await snaps.remove(key);

    const refused = new Error('the intent was refused');
    const gate = new Promise<void>((_, reject) => setTimeout(() => reject(refused), 100));
    gate.catch(() => undefined);
    await expect(snaps.prepare(key, chain!, { publishAfter: gate })).rejects.toBe(refused);
    expect(readdirSync(activeDir).filter((e) => e.includes(key))).toEqual([]);
    // Nothing stays claimed either: the key can be made again.
    await snaps.prepare(key, chain!);
    await snaps.remove(key);
  });

  it('mounts a 3-layer chain with whiteouts and an opaque dir as the merged view', async () => {
    const l0 = await layer([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/os-release', body: 'base' },
      { name: 'etc/remove-me', body: 'x' },
      { name: 'app/', type: 'dir' },
      { name: 'app/old1', body: 'o1' },
      { name: 'app/old2', body: 'o2' },
      { name: 'keep/file', body: 'k' },
    ]);
    const l1 = await layer([
      { name: 'etc/.wh.remove-me', body: '' },
      { name: 'etc/added', body: 'l1' },
      { name: 'app/', type: 'dir' },
      { name: 'app/.wh..wh..opq', body: '' },
      { name: 'app/new', body: 'n' },
    ]);
    const l2 = await layer([
      { name: 'etc/os-release', body: 'top' },
      { name: '.wh.keep', body: '' },
    ]);
    const ids = await commitChain([l0, l1, l2]);
    const lowers = snaps.lowerDirs(ids[2]!);
    expect(lowers).toEqual([2, 1, 0].map((i) => join(snaps.dir, String(snaps.get(ids[i]!)!.id), 'fs')));
    expect(snaps.get(ids[1]!)).toMatchObject({ chainId: ids[1], parent: ids[0], diffId: l1.diffId });

    const key = `ctr-${process.pid}`;
    const prep = await snaps.prepare(key, ids[2]!);
    expect(prep.lowerdirs).toEqual(lowers);
    expect(prep.mountOptions).toBe(`lowerdir=${lowers.join(':')},upperdir=${prep.upperdir},workdir=${prep.workdir}`);
    const target = join(root, 'rootfs');
    await snaps.mount(key, target);
    mounted.push(target);
    expect(readFileSync(join(target, 'etc/os-release'), 'utf8')).toBe('top');
    expect(readFileSync(join(target, 'etc/added'), 'utf8')).toBe('l1');
    expect(existsSync(join(target, 'etc/remove-me'))).toBe(false);
    expect(readdirSync(join(target, 'app'))).toEqual(['new']);
    expect(existsSync(join(target, 'keep'))).toBe(false);
    // Writes land in the upper dir, lower layers stay untouched.
    writeFileSync(join(target, 'etc/os-release'), 'written');
    expect(readFileSync(join(prep.upperdir, 'etc/os-release'), 'utf8')).toBe('written');
    expect(readFileSync(join(lowers[0]!, 'etc/os-release'), 'utf8')).toBe('top');

    await expect(snaps.removeCommitted(ids[1]!)).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(snaps.removeCommitted(ids[2]!)).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(snaps.remove(key)).rejects.toThrow(/still mounted/);
    await snaps.unmount(target);
    mounted.pop();
    await snaps.remove(key);
    expect(existsSync(join(snaps.dir, 'active', key))).toBe(false);
    await expect(snaps.removeCommitted(ids[1]!)).rejects.toThrow(/parent of/);
    await snaps.removeCommitted(ids[2]!);
    expect(snaps.has(ids[2]!)).toBe(false);
  });

  it('leaves nothing behind when an unpack fails, and shares concurrent unpacks', async () => {
    const before = readdirSync(snaps.dir).sort();
    for (const entries of Object.values(maliciousLayers)) {
      const bad = await layer(entries);
      await expect(snaps.ensureLayer(bad.diffId, undefined, async (dir) => {
        await unpackLayer(bad.blob, dir);
      })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(snaps.has(bad.diffId)).toBe(false);
    }
    expect(readdirSync(snaps.dir).sort()).toEqual(before);
    expect(tmpEntries()).toEqual([]);

    // An unpack whose diffID does not match the chain ID is data loss, and also leaves nothing.
    const l = await layer([{ name: 'x', body: 'x' }]);
    await expect(snaps.ensureLayer(sha256('something else'), undefined, async (dir) => {
      const r = await unpackLayer(l.blob, dir);
      return { diffId: r.diffId };
    })).rejects.toBeInstanceOf(DataLossError);
    expect(tmpEntries()).toEqual([]);

    let unpacks = 0;
    const all = await Promise.all([1, 2, 3].map(() => snaps.ensureLayer(l.diffId, undefined, async (dir) => {
      unpacks += 1;
      await unpackLayer(l.blob, dir);
    })));
    expect(unpacks).toBe(1);
    expect(new Set(all.map((s) => s.id)).size).toBe(1);
    await expect(snaps.ensureLayer(sha256('child'), sha256('no parent'), async () => undefined))
      .rejects.toBeInstanceOf(FailedPreconditionError);
  });

  it('gc keeps referenced chains and their ancestors, and active snapshots', async () => {
    const a = await layer([{ name: 'a', body: 'a' }]);
    const b = await layer([{ name: 'b', body: 'b' }]);
    const c = await layer([{ name: 'c', body: 'c' }]);
    const d = await layer([{ name: 'd', body: 'd' }]);
    const kept = await commitChain([a, b]);
    const dropped = await commitChain([c]);
    const used = await commitChain([d]);
    await snaps.prepare(`gc-${process.pid}`, used[0]!);
    const removed = await snaps.gc([kept[1]!]);
    expect(removed).toContain(dropped[0]);
    expect(snaps.has(kept[0]!)).toBe(true);
    expect(snaps.has(kept[1]!)).toBe(true);
    expect(snaps.has(used[0]!)).toBe(true);
    expect(snaps.has(dropped[0]!)).toBe(false);
    expect(tmpEntries()).toEqual([]);
    await snaps.remove(`gc-${process.pid}`);
    expect(await snaps.gc([kept[1]!])).toEqual([used[0]]);
    // Its files are deleted in the background, and a trash entry counts in usage(): the walks
    // below compare two readings of one tree, so none may be deleting under them.
    await snaps.settled();

    // A fresh instance rebuilds the same view from disk.
    const again = new Snapshotter(root);
    await again.load();
    expect(again.has(kept[1]!)).toBe(true);
    expect(again.lowerDirs(kept[1]!)).toEqual(snaps.lowerDirs(kept[1]!));
    expect(again.listActive()).toEqual([]);
    // Cached per committed layer, yet the same figure as a full walk.
    writeFileSync(join(snaps.dir, 'active', 'probe'), Buffer.alloc(100_000, 1));
    expect(await snaps.usage()).toEqual(await diskUsage(snaps.dir));
    expect(await snaps.usage()).toEqual(await diskUsage(snaps.dir));
    // ImageFsInfo's way: the active snapshots walked once, for both of its figures.
    const active = await snaps.activeUsage();
    expect(active).toEqual(await diskUsage(join(snaps.dir, 'active')));
    expect(await snaps.usage(active)).toEqual(await diskUsage(snaps.dir));
    rmSync(join(snaps.dir, 'active', 'probe'));
    await snaps.gc([]);
    await snaps.settled();
    expect(await snaps.usage()).toEqual(await diskUsage(snaps.dir));
    expect(() => snaps.lowerDirs(sha256('missing'))).toThrow(NotFoundError);
    await expect(snaps.prepare('../evil', kept[1]!)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('gc answers once the dead layers are out of sight (synced); their files are deleted after it, or by the next start-up', async () => {
    const big = await layer(Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: `file ${i}` })));
    const [dead] = await commitChain([big]);
    const dir = snaps.lowerDirs(dead!)[0]!.replace(/\/fs$/, '');
    const trashDir = join(snaps.dir, 'active', '.trash');
    expect(await snaps.gc([])).toContain(dead);
    // Gone from its numbered path, its 300 files still being deleted in the background: the
    // call did not wait for the unlinks.
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(trashDir)).toHaveLength(1);
    await snaps.settled();
    expect(readdirSync(trashDir)).toEqual([]);

    // A crash before the deletion ended: the next start-up deletes what is left, and the layer
    // does not come back.
    const [again] = await commitChain([big]);
    const entry = join(trashDir, `${dead!.slice(0, 12)}-crashed`);
    mkdirSync(join(entry, 'fs'), { recursive: true });
    writeFileSync(join(entry, 'snapshot.json'), readFileSync(join(snaps.lowerDirs(again!)[0]!, '..', 'snapshot.json')));
    const fresh = new Snapshotter(root);
    await fresh.load();
    await fresh.cleanupTemp();
    expect(existsSync(entry)).toBe(false);
    expect(fresh.list().filter((s) => s.chainId === again)).toHaveLength(1);
    await snaps.gc([]);
    await snaps.settled();
  });

  it('refuses to remove a snapshot mounted twice on one target and unmounted once', async () => {
    const [chain] = await commitChain([await layer([{ name: 'f', body: 'x' }])]);
    const key = `twice-${process.pid}`;
    await snaps.prepare(key, chain);
    const target = join(root, 'twice-rootfs');
    await snaps.mount(key, target);
    mounted.push(target);
    await snaps.mount(key, target);
    mounted.push(target);
    await snaps.unmount(target);
    mounted.pop();
    await expect(snaps.remove(key)).rejects.toThrow(`still mounted (on ${target})`);
    await snaps.unmount(target);
    mounted.pop();
    await snaps.remove(key);
  });

  it('finds a snapshot an earlier snapshotter mounted (after a restart) by its upper dir', async () => {
    const [chain] = await commitChain([await layer([{ name: 'f', body: 'x' }])]);
    const key = `earlier-${process.pid}`;
    await snaps.prepare(key, chain);
    const target = join(root, 'earlier-rootfs');
    await snaps.mount(key, target);
    mounted.push(target);
    const next = new Snapshotter(root);
    await next.load();
    // Its own mounts it tracks; this one it never made, so it asks the mount table.
    await expect(next.remove(key)).rejects.toThrow(/still mounted \(an overlay with upper dir .*earlier-/);
    // Unmounted by hand (not through either snapshotter): no record says so, the kernel does.
    await unmountOverlay(target);
    mounted.pop();
    await next.remove(key);
    expect(existsSync(join(next.dir, 'active', key))).toBe(false);
    await next.settled();
    await snaps.load();
  });

  it('mounts a chain too deep for absolute lowerdir paths in one page', async () => {
    const layers = [];
    for (let i = 0; i < 140; i += 1) layers.push(await layer([{ name: `f${i}`, body: String(i) }]));
    const ids = await commitChain(layers);
    const key = `deep-${process.pid}`;
    const prep = await snaps.prepare(key, ids[ids.length - 1]!);
    expect(prep.mountOptions.length).toBeGreaterThan(4096);
    const target = join(root, 'deep-rootfs');
    await snaps.mount(key, target);
    mounted.push(target);
    expect(readFileSync(join(target, 'f0'), 'utf8')).toBe('0');
    expect(readFileSync(join(target, 'f139'), 'utf8')).toBe('139');
    await expect(snaps.remove(key)).rejects.toThrow(/still mounted/);
    await snaps.unmount(target);
    mounted.pop();
    await snaps.remove(key);
  });

  it('mounts read-only views (no layers, one, a deep chain) that hold their chain until removed', async () => {
    const one = await commitChain([await layer([{ name: 'bin/', type: 'dir' }, { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o4755 }])]);
    const deepLayers = [];
    for (let i = 0; i < 140; i += 1) deepLayers.push(await layer([{ name: `v${i}`, body: String(i) }]));
    const deep = await commitChain(deepLayers);
    const cases: Array<[string, string | undefined, string[]]> = [
      ['none', undefined, []],
      ['one', one[0], ['bin']],
      ['deep', deep[deep.length - 1], ['v0', 'v139']],
    ];
    for (const [name, chain, expected] of cases) {
      const key = `view-${name}-${process.pid}`;
      await snaps.prepareView(key, chain);
      const target = join(root, `view-${name}`);
      mkdirSync(target);
      await snaps.mountView(key, target);
      mounted.push(target);
      const entries = readdirSync(target);
      for (const e of expected) expect(entries, name).toContain(e);
      expect(entries.length, name).toBe(name === 'deep' ? 140 : expected.length);
      // No upper dir: nothing can be written, and the mount itself is ro, nosuid, nodev, noexec.
      expect(() => writeFileSync(join(target, 'new'), 'x'), name).toThrow(/EROFS/);
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target)!;
      expect(line.split(' ')[5]!.split(','), name).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
      expect(line, name).not.toContain('upperdir=');
    }
    // A view holds its chain against gc like a writable snapshot does, also once reloaded.
    await snaps.gc([]);
    expect(snaps.has(one[0]!)).toBe(true);
    const again = new Snapshotter(root);
    await again.load();
    expect(again.listActive().filter((a) => a.view).map((a) => a.key).sort()).toEqual(cases.map(([n]) => `view-${n}-${process.pid}`).sort());
    expect(() => snaps.mounts(`view-one-${process.pid}`)).toThrow(NotFoundError);
    for (const [name] of cases) {
      const target = join(root, `view-${name}`);
      await snaps.unmount(target);
      mounted.splice(mounted.indexOf(target), 1);
      await snaps.remove(`view-${name}-${process.pid}`);
    }
    expect(await snaps.gc([])).toEqual(expect.arrayContaining([one[0], deep[0]]));
    expect(snaps.has(one[0]!)).toBe(false);
  });

  it('cleans up interrupted work at start-up', async () => {
    // The earlier tests' removals still deleting in the background would be swept and counted too.
    await snaps.settled();
    mkdirSync(join(snaps.dir, 'tmp-interrupted', 'fs'), { recursive: true });
    mkdirSync(join(snaps.dir, '99999', 'fs'), { recursive: true }); // no record: never committed
    mkdirSync(join(snaps.dir, 'active', '.tmp-half'), { recursive: true });
    const fresh = new Snapshotter(root);
    await fresh.load();
    expect(await fresh.cleanupTemp()).toBe(3);
    expect(existsSync(join(snaps.dir, '99999'))).toBe(false);
    expect(tmpEntries()).toEqual([]);
  });
});
