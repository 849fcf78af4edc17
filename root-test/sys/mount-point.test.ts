// isMountPoint against the real kernel (root: bind mounts).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNT_DETACH, mountAsync, umount2Async } from '../../src/sys/libc.js';
import { isMountPoint } from '../../src/sys/mount-point.js';

const MS_BIND = 0x1000;
let root: string;
const mounted: string[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `crib-mountpoint-${process.pid}-`));
});
afterAll(async () => {
  for (const m of mounted.reverse()) await umount2Async(m, MNT_DETACH);
  rmSync(root, { recursive: true, force: true });
});

describe('isMountPoint', () => {
  it('is true exactly while something is mounted on the path, a bind of the same file system too', async () => {
    const dir = join(root, 'target');
    mkdirSync(join(dir, 'below'), { recursive: true });
    expect(isMountPoint(dir)).toBe(false);
    await mountAsync(dir, dir, null, MS_BIND, null);
    mounted.push(dir);
    expect(isMountPoint(dir)).toBe(true);
    // Below a mount point is not a mount point; nor is a path that does not exist.
    expect(isMountPoint(join(dir, 'below'))).toBe(false);
    expect(isMountPoint(join(root, 'missing'))).toBe(false);
    expect(isMountPoint(join(root, 'missing', 'deeper'))).toBe(false);
    await umount2Async(dir, 0);
    mounted.pop();
    expect(isMountPoint(dir)).toBe(false);
  });

  it('sees a tmpfs, and a mount two deep (stacked) until both are gone', async () => {
    const dir = join(root, 'stacked');
    mkdirSync(dir);
    await mountAsync('crib-test', dir, 'tmpfs', 0, 'size=64k');
    mounted.push(dir);
    await mountAsync('crib-test', dir, 'tmpfs', 0, 'size=64k');
    mounted.push(dir);
    await umount2Async(dir, 0);
    mounted.pop();
    expect(isMountPoint(dir)).toBe(true);
    await umount2Async(dir, 0);
    mounted.pop();
    expect(isMountPoint(dir)).toBe(false);
  });
});
