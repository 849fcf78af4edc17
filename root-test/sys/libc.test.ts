// libc bindings that need root: device nodes, trusted.* xattrs (also on symlinks), mounts.
import * as fs from 'node:fs';
import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  S_IFBLK, S_IFCHR, devMajor, devMinor, lgetxattr, llistxattr, lremovexattr, lsetxattr, makedev, mknod, mountAsync, umount2Async, unmountAll,
} from '../../src/sys/libc.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-libc-root-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('libc bindings (root)', () => {
  it('mknod makes char and block devices with the right rdev', () => {
    mknod(join(dir, 'c'), S_IFCHR | 0o600, 136, 300);
    mknod(join(dir, 'b'), S_IFBLK | 0o640, 259, 1);
    const c = lstatSync(join(dir, 'c'));
    expect(c.isCharacterDevice()).toBe(true);
    expect([devMajor(c.rdev), devMinor(c.rdev)]).toEqual([136, 300]);
    expect(Number(makedev(136, 300))).toBe(c.rdev);
    const b = lstatSync(join(dir, 'b'));
    expect([b.isBlockDevice(), devMajor(b.rdev), devMinor(b.rdev)]).toEqual([true, 259, 1]);
  });

  it('sets, lists, reads and removes binary xattrs without following symlinks', () => {
    const f = join(dir, 'f');
    writeFileSync(f, 'x');
    symlinkSync(f, join(dir, 'link'));
    const value = Buffer.from([0x01, 0x00, 0x80, 0xff, 0x7f]);
    lsetxattr(f, 'trusted.crib-test', value);
    lsetxattr(join(dir, 'link'), 'trusted.on-link', 'L');
    expect(lgetxattr(f, 'trusted.crib-test')).toEqual(value);
    expect(llistxattr(f)).toContain('trusted.crib-test');
    expect(llistxattr(f)).not.toContain('trusted.on-link');
    expect(lgetxattr(join(dir, 'link'), 'trusted.on-link')?.toString()).toBe('L');
    expect(lgetxattr(f, 'trusted.absent')).toBeUndefined();
    lremovexattr(f, 'trusted.crib-test');
    expect(lgetxattr(f, 'trusted.crib-test')).toBeUndefined();
  });

  it('mounts and unmounts a tmpfs; unmounting what is no mount point, or missing, says so without throwing', async () => {
    const m = join(dir, 'mnt');
    fs.mkdirSync(m);
    await mountAsync('tmpfs', m, 'tmpfs', 0, 'size=1m,mode=0711');
    await mountAsync('tmpfs', m, 'tmpfs', 0, 'size=1m,mode=0700');
    let unmounted = 0;
    try {
      expect(lstatSync(m).mode & 0o777).toBe(0o700);
    } finally {
      while (await umount2Async(m)) unmounted += 1;
    }
    expect(unmounted).toBe(2);
    expect(lstatSync(m).mode & 0o777).not.toBe(0o711);
    expect(await umount2Async(m)).toBe(false);
    expect(await umount2Async(join(dir, 'absent'))).toBe(false);
    // Any other failure is thrown, named: a path through a file is ENOTDIR.
    fs.writeFileSync(join(dir, 'file'), '');
    await expect(umount2Async(join(dir, 'file', 'below'))).rejects.toThrow(/umount2 .*ENOTDIR/);
    // A refused mount is thrown naming the target.
    await expect(mountAsync('tmpfs', join(dir, 'absent'), 'tmpfs', 0, null)).rejects.toThrow(/mount tmpfs tmpfs on .*absent: ENOENT/);
  });

  it('unmountAll takes every mount stacked on each target, passes over what is not mounted, and names the first it cannot', async () => {
    const a = join(dir, 'all-a');
    const b = join(dir, 'all-b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    for (let i = 0; i < 3; i++) await mountAsync('tmpfs', a, 'tmpfs', 0, 'size=64k');
    await mountAsync('tmpfs', b, 'tmpfs', 0, 'size=64k');
    const mounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => [a, b].includes(l.split(' ')[4]!)).length;
    expect(mounts()).toBe(4);
    await unmountAll([join(dir, 'absent'), a, join(dir, 'file-less'), b], 0);
    expect(mounts()).toBe(0);
    // Again: nothing left, nothing thrown.
    await unmountAll([a, b], 0);
    // A target that fails otherwise stops it there, named; the ones before it are done.
    await mountAsync('tmpfs', a, 'tmpfs', 0, 'size=64k');
    await mountAsync('tmpfs', b, 'tmpfs', 0, 'size=64k');
    fs.writeFileSync(join(dir, 'plain'), '');
    await expect(unmountAll([a, join(dir, 'plain', 'below'), b], 0)).rejects.toThrow(/umount2 .*plain\/below: ENOTDIR/);
    expect(mounts()).toBe(1);
    await unmountAll([b], 0);
    // A path that keeps holding mounts is given up on after 64, named, and the rest stays.
    for (let i = 0; i < 65; i++) await mountAsync('tmpfs', a, 'tmpfs', 0, 'size=64k');
    await expect(unmountAll([a], 0)).rejects.toThrow(/umount2 .*all-a: EBUSY/);
    expect(mounts()).toBe(1);
    await unmountAll([a], 0);
    expect(mounts()).toBe(0);
  });
});
