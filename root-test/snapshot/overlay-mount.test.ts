// Unmounting overlays against the real kernel (root: overlay mounts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountOverlay, unmountOverlay } from '../../src/snapshot/overlay-mount.js';
import { isMountPoint } from '../../src/sys/mount-point.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-overlay-mount-${process.pid}-`));
});
afterAll(async () => {
  for (const t of ['a', 'b', 'busy'].map((n) => join(dir, n, 'merged'))) await unmountOverlay(t);
  rmSync(dir, { recursive: true, force: true });
});

/** A writable overlay of one lower dir at dir/name/merged. */
async function writable(name: string): Promise<string> {
  const base = join(dir, name);
  for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'lower', 'from-image'), 'image\n');
  const merged = join(base, 'merged');
  await mountOverlay({ lowerdirs: [join(base, 'lower')], upperdir: join(base, 'upper'), workdir: join(base, 'work') }, merged, base);
  return merged;
}

describe('unmountOverlay', () => {
  it('leaves the event loop free while the unmount syncs the upper filesystem', async () => {
    const merged = await writable('a');
    // Written through the overlay and not synced: the last unmount flushes it (overlayfs syncs
    // the upper filesystem), which on the event loop would have held up every other callback.
    writeFileSync(join(merged, 'written-by-the-container'), Buffer.alloc(32 << 20, 1));
    const order: string[] = [];
    const unmounted = unmountOverlay(merged).then(() => order.push('unmounted'));
    setImmediate(() => order.push('event loop ran'));
    await unmounted;
    expect(order).toEqual(['event loop ran', 'unmounted']);
    expect(isMountPoint(merged)).toBe(false);
  });

  it('runs unmounts begun together one after another, each settling on its own', async () => {
    const a = join(dir, 'a', 'merged');
    await mountOverlay({ lowerdirs: [join(dir, 'a', 'lower')], upperdir: join(dir, 'a', 'upper'), workdir: join(dir, 'a', 'work') }, a, join(dir, 'a'));
    const b = await writable('b');
    writeFileSync(join(a, 'dirty'), Buffer.alloc(16 << 20, 2));
    const settled: string[] = [];
    const first = unmountOverlay(a).then(() => settled.push(`a: ${isMountPoint(b) ? 'b still mounted' : 'b gone'}`));
    const second = unmountOverlay(b).then(() => settled.push('b'));
    // Not a mount point (any more) is fine, and does not hold up the unmounts after it.
    const third = unmountOverlay(join(dir, 'a', 'lower')).then(() => settled.push('not a mount'));
    await Promise.all([first, second, third]);
    expect(settled).toEqual(['a: b still mounted', 'b', 'not a mount']);
    expect(isMountPoint(a)).toBe(false);
    expect(isMountPoint(b)).toBe(false);
  });

  it('detaches an overlay still in use lazily, and fails for what is no directory at all', async () => {
    const merged = await writable('busy');
    // A process's cwd inside the mount keeps it busy: umount2 answers EBUSY, the detach succeeds.
    const { spawn } = await import('node:child_process');
    const holder = spawn('sleep', ['60'], { cwd: merged, stdio: 'ignore' });
    await new Promise((r) => holder.once('spawn', r));
    try {
      await unmountOverlay(merged);
      expect(isMountPoint(merged)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
    writeFileSync(join(dir, 'file'), '');
    await expect(unmountOverlay(join(dir, 'file', 'below'))).rejects.toThrow(/umount2 .*ENOTDIR/);
  });
});
