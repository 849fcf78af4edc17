import * as fs from 'node:fs';
import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoCode } from '../errors.js';
import { diskUsage } from './disk-usage.js';
import {
  S_IFBLK, S_IFCHR, S_IFIFO, devMajor, devMinor, lgetxattr, llistxattr, lremovexattr, lsetxattr,
  fdHandoffPair, makedev, mknod, mount, receiveFd, umount2,
} from './libc.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-libc-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('libc bindings', () => {
  it('mknod makes char/block devices with the right rdev, and fifos', () => {
    mknod(join(dir, 'c'), S_IFCHR | 0o600, 136, 300);
    mknod(join(dir, 'b'), S_IFBLK | 0o640, 259, 1);
    mknod(join(dir, 'p'), S_IFIFO | 0o644);
    const c = lstatSync(join(dir, 'c'));
    expect(c.isCharacterDevice()).toBe(true);
    expect([devMajor(c.rdev), devMinor(c.rdev)]).toEqual([136, 300]);
    expect(Number(makedev(136, 300))).toBe(c.rdev);
    const b = lstatSync(join(dir, 'b'));
    expect([b.isBlockDevice(), devMajor(b.rdev), devMinor(b.rdev)]).toEqual([true, 259, 1]);
    expect(lstatSync(join(dir, 'p')).isFIFO()).toBe(true);
  });

  it('mknod reports errno as a Node-style code', () => {
    let err: unknown;
    try {
      mknod(join(dir, 'c'), S_IFCHR, 1, 3);
    } catch (e) {
      err = e;
    }
    expect(errnoCode(err)).toBe('EEXIST');
    expect((err as Error).message).toContain(join(dir, 'c'));
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

  it('receiveFd never blocks: EAGAIN while nothing was sent, undefined once the peer closed', () => {
    // Sending happens in native code (crib-pinns port-forward); the handoff itself is covered
    // by src/streaming/server/port-forward-relay.test.ts.
    const [ours, theirs] = fdHandoffPair();
    try {
      expect(() => receiveFd(ours)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'recvmsg' }));
      fs.closeSync(theirs);
      expect(receiveFd(ours)).toBeUndefined();
    } finally {
      fs.closeSync(ours);
    }
  });

  it('mounts and unmounts a tmpfs', () => {
    const m = join(dir, 'mnt');
    fs.mkdirSync(m);
    mount('tmpfs', m, 'tmpfs', 0, 'size=1m,mode=0711');
    try {
      expect(lstatSync(m).mode & 0o777).toBe(0o711);
    } finally {
      umount2(m);
    }
    expect(lstatSync(m).mode & 0o777).not.toBe(0o711);
    expect(() => umount2(m)).toThrow(/EINVAL/);
  });

  it('diskUsage counts hardlinked inodes once', async () => {
    const d = join(dir, 'du');
    fs.mkdirSync(d);
    writeFileSync(join(d, 'a'), Buffer.alloc(64 * 1024, 1));
    fs.linkSync(join(d, 'a'), join(d, 'a2'));
    const u = await diskUsage(d);
    expect(u.inodes).toBe(2); // the dir and one file
    expect(u.bytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(u.bytes).toBeLessThan(2 * 64 * 1024);
    expect(await diskUsage(join(dir, 'nope'))).toEqual({ bytes: 0, inodes: 0 });
  });
});
