// How a writable snapshot is made on CreateContainer's path: its dirs and its record side by
// side in the temp dir, each a file system round trip (the record's write a sync). The file
// system is the real one; only mkdir is wrapped, to hold the work dir's.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** When set, a mkdir of a snapshot's work dir waits for it. */
let workDirGate: Promise<void> | undefined;

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const mkdir: typeof fs.mkdir = (async (path: Parameters<typeof fs.mkdir>[0], opts?: Parameters<typeof fs.mkdir>[1]) => {
    if (String(path).endsWith('/work')) await workDirGate;
    return fs.mkdir(path, opts);
  }) as typeof fs.mkdir;
  return { ...fs, default: { ...fs, mkdir }, mkdir };
});

const { Snapshotter } = await import('./snapshotter.js');

describe('Snapshotter.prepare', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'crib-snap-prepare-'));
  });
  afterEach(async () => {
    workDirGate = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('writes the record while the dirs are made, and publishes the whole once both are done', async () => {
    const snaps = new Snapshotter(root);
    await snaps.load();
    let release!: () => void;
    workDirGate = new Promise<void>((resolve) => (release = resolve));
    const prepared = snaps.prepare('c1', undefined);
    const activeDir = join(root, 'snapshots', 'active');
    const temp = () => readdirSync(activeDir).find((n) => n.startsWith('.tmp-c1-'));
    // The work dir is held: the record is written beside it all the same.
    let recorded = false;
    for (let i = 0; i < 200 && !recorded; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const t = temp();
      recorded = t !== undefined && existsSync(join(activeDir, t, 'snapshot.json'));
    }
    expect(recorded).toBe(true);
    expect(existsSync(join(activeDir, 'c1'))).toBe(false);
    release();
    const m = await prepared;
    expect(temp()).toBeUndefined();
    expect(statSync(m.upperdir).mode & 0o7777).toBe(0o755);
    expect(statSync(m.workdir).mode & 0o7777).toBe(0o700);
    expect(existsSync(join(activeDir, 'c1', 'snapshot.json'))).toBe(true);
  });

  it('leaves nothing when a dir cannot be made', async () => {
    const snaps = new Snapshotter(root);
    await snaps.load();
    workDirGate = Promise.reject(new Error('no room for the work dir'));
    workDirGate.catch(() => undefined);
    await expect(snaps.prepare('c2', undefined)).rejects.toThrow(/no room for the work dir/);
    expect(readdirSync(join(root, 'snapshots', 'active')).filter((n) => n !== '.trash')).toEqual([]);
    // Nothing stays claimed: the key can be made again.
    workDirGate = undefined;
    await snaps.prepare('c2', undefined);
  });
});
