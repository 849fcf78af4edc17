import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ResourceExhaustedError } from '../../../src/errors.js';
import { ByteBudget } from '../../../src/image/limits.js';
import { devMajor, devMinor, lgetxattr } from '../../../src/sys/libc.js';
import {
  buildTar, fileCapability, gzipLayer, maliciousLayers, sha256, zstdLayer, type FixtureEntry,
} from '../../../test-support/tar-fixtures.js';
import { encodeTar } from '../../../test-support/tar-writer.js';
import { unpackLayer } from '../../../src/image/unpack/unpack-layer.js';

let work: string;
let n = 0;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), `crib-unpack-${process.pid}-`));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function blob(data: Buffer): string {
  const p = join(work, `blob-${n++}`);
  writeFileSync(p, data);
  return p;
}
function freshDir(): string {
  return join(work, `layer-${n++}`);
}

const T1 = new Date('2021-03-04T05:06:07Z');
const T2 = new Date('2019-01-02T03:04:05Z');
// CAP_SETUID (bit 7) puts 0x80 in the value: a byte UTF-8 decoding would mangle.
const CAP = fileCapability((1 << 7) | (1 << 10));

const richLayer: FixtureEntry[] = [
  { name: 'etc/', type: 'dir', mode: 0o755, mtime: T2 },
  { name: 'etc/hostname', body: 'crib\n', mode: 0o640, uid: 1000, gid: 2000, mtime: T1 },
  { name: 'bin/', type: 'dir', mode: 0o711, uid: 3, gid: 4, mtime: T2 },
  { name: 'bin/su', body: 'su-binary', mode: 0o4755, mtime: T1 },
  { name: 'bin/sgid', body: 'x', mode: 0o2711, mtime: T1 },
  { name: 'bin/ping', body: 'ping-binary', mode: 0o755, xattrs: { 'security.capability': CAP, 'user.note': 'hello' } },
  { name: 'bin/su-hard', type: 'link', linkname: 'bin/su' },
  { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 5, gid: 6, mtime: T1 },
  { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: T2 },
  { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
  { name: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0, gid: 6 },
  { name: 'run/fifo', type: 'fifo', mode: 0o620 },
  { name: 'implicit/parent/file.txt', body: 'deep' },
  { name: 'gone/', type: 'dir' },
  { name: 'gone/.wh.deleted.txt', body: '' },
  { name: '.wh.removed-dir', body: '' },
  { name: 'opaque/', type: 'dir', mode: 0o750 },
  { name: 'opaque/.wh..wh..opq', body: '' },
  { name: 'replaced', body: 'first version' },
  { name: 'replaced', type: 'symlink', linkname: 'etc/hostname' },
  { name: 'was-dir/', type: 'dir' },
  { name: 'was-dir/child', body: 'c' },
  { name: 'was-dir', body: 'now a file' },
  // A setgid dir makes new files inherit its group; the entry's own group (0) must still win.
  { name: 'shared/', type: 'dir', mode: 0o2775, gid: 50 },
  { name: 'shared/root-file', body: 'r', mode: 0o666 },
];

describe('unpackLayer', () => {
  it('preserves modes, owners, times, links, devices, xattrs and writes overlay whiteouts', async () => {
    const tar = await buildTar(richLayer);
    const dir = freshDir();
    const res = await unpackLayer(blob(gzipLayer(tar)), dir);
    expect(res.diffId).toBe(sha256(tar));
    expect(res.size).toBe(tar.length);
    expect(res.compression).toBe('gzip');

    const host = lstatSync(join(dir, 'etc/hostname'));
    expect(host.mode & 0o7777).toBe(0o640);
    expect([host.uid, host.gid]).toEqual([1000, 2000]);
    expect(host.mtimeMs).toBe(T1.getTime());
    expect(readFileSync(join(dir, 'etc/hostname'), 'utf8')).toBe('crib\n');

    // Directory mtimes survive their children being written afterwards.
    expect(lstatSync(join(dir, 'etc')).mtimeMs).toBe(T2.getTime());
    const bin = lstatSync(join(dir, 'bin'));
    expect(bin.mode & 0o7777).toBe(0o711);
    expect([bin.uid, bin.gid]).toEqual([3, 4]);
    expect(bin.mtimeMs).toBe(T2.getTime());
    expect(lstatSync(join(dir, 'tmp')).mode & 0o7777).toBe(0o1777);

    expect(lstatSync(join(dir, 'bin/su')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(dir, 'bin/sgid')).mode & 0o7777).toBe(0o2711);
    expect(lstatSync(join(dir, 'bin/su-hard')).ino).toBe(lstatSync(join(dir, 'bin/su')).ino);
    expect(lstatSync(join(dir, 'bin/su')).nlink).toBe(2);

    expect(lgetxattr(join(dir, 'bin/ping'), 'security.capability')).toEqual(CAP);
    expect(lgetxattr(join(dir, 'bin/ping'), 'user.note')?.toString()).toBe('hello');

    const sh = lstatSync(join(dir, 'bin/sh'));
    expect(sh.isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('/bin/busybox');
    expect([sh.uid, sh.gid]).toEqual([5, 6]);
    expect(sh.mtimeMs).toBe(T1.getTime());

    const nul = lstatSync(join(dir, 'dev/null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect([devMajor(nul.rdev), devMinor(nul.rdev)]).toEqual([1, 3]);
    expect(nul.mode & 0o7777).toBe(0o666);
    const loop = lstatSync(join(dir, 'dev/loop0'));
    expect(loop.isBlockDevice()).toBe(true);
    expect([devMajor(loop.rdev), devMinor(loop.rdev), loop.gid]).toEqual([7, 0, 6]);
    const fifo = lstatSync(join(dir, 'run/fifo'));
    expect(fifo.isFIFO()).toBe(true);
    expect(fifo.mode & 0o7777).toBe(0o620);

    expect(readFileSync(join(dir, 'implicit/parent/file.txt'), 'utf8')).toBe('deep');

    for (const w of ['gone/deleted.txt', 'removed-dir']) {
      const st = lstatSync(join(dir, w));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0);
    }
    expect(existsSync(join(dir, 'gone/.wh.deleted.txt'))).toBe(false);
    expect(lgetxattr(join(dir, 'opaque'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(existsSync(join(dir, 'opaque/.wh..wh..opq'))).toBe(false);

    expect(readlinkSync(join(dir, 'replaced'))).toBe('etc/hostname');
    expect(lstatSync(join(dir, 'was-dir')).isFile()).toBe(true);
    expect(readFileSync(join(dir, 'was-dir'), 'utf8')).toBe('now a file');
    expect(res.whiteouts).toBe(3);
    const shared = lstatSync(join(dir, 'shared'));
    expect([shared.mode & 0o7777, shared.gid]).toEqual([0o2775, 50]);
    const rootFile = lstatSync(join(dir, 'shared/root-file'));
    expect([rootFile.mode & 0o7777, rootFile.uid, rootFile.gid]).toEqual([0o666, 0, 0]);
  });

  it('gives the same tree and diffID for gzip, zstd and plain tars', async () => {
    const random = randomBytes(5 * 1024 * 1024);
    const tar = await buildTar([
      { name: 'a/', type: 'dir' },
      { name: 'a/big.bin', body: Buffer.alloc(3 * 1024 * 1024 + 17, 7) },
      { name: 'a/small', body: 'small' },
      // Incompressible, so the zstd blob is big enough to be hashed on a worker thread.
      { name: 'a/random.bin', body: random },
    ]);
    for (const [data, kind] of [[tar, 'none'], [gzipLayer(tar), 'gzip'], [zstdLayer(tar), 'zstd']] as const) {
      const dir = freshDir();
      const res = await unpackLayer(blob(data), dir);
      expect(res.compression).toBe(kind);
      expect(res.diffId).toBe(sha256(tar));
      expect(lstatSync(join(dir, 'a/big.bin')).size).toBe(3 * 1024 * 1024 + 17);
      expect(readFileSync(join(dir, 'a/small'), 'utf8')).toBe('small');
      expect(readFileSync(join(dir, 'a/random.bin')).equals(random)).toBe(true);
    }
  });

  it('takes a plain layer\'s diffID from its verified blob digest, and hashes compressed ones', async () => {
    const tar = await buildTar([{ name: 'f', body: 'x' }]);
    const claimed = sha256('the content store verified this digest');
    const plain = await unpackLayer(blob(tar), freshDir(), { blobDigest: claimed });
    expect(plain.diffId).toBe(claimed);
    const gz = gzipLayer(tar);
    const compressed = await unpackLayer(blob(gz), freshDir(), { blobDigest: sha256(gz) });
    expect(compressed.diffId).toBe(sha256(tar));
  });

  it('handles long names through PAX and GNU headers', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}.txt`;
    const tar = await buildTar([{ name: long, body: 'long' }, { name: 'l', type: 'symlink', linkname: 'x'.repeat(200) }]);
    const dir = freshDir();
    await unpackLayer(blob(tar), dir);
    expect(readFileSync(join(dir, long), 'utf8')).toBe('long');
    expect(readlinkSync(join(dir, 'l'))).toBe('x'.repeat(200));
  });

  // The archive allows names up to PATH_MAX of their own; under the layer's directory one can be
  // longer than the kernel takes, which failed the pull midway with INTERNAL and a host path.
  it('unpacks a path of PATH_MAX - 1 bytes under the layer dir and refuses a longer one by name', async () => {
    /** A relative path of exactly `bytes` bytes, in components the kernel takes (NAME_MAX 255). */
    const pathOf = (bytes: number, letter: string): string => {
      const parts: string[] = [];
      let left = bytes;
      while (left > 250) {
        parts.push(letter.repeat(200));
        left -= 201;
      }
      parts.push(letter.repeat(left));
      return parts.join('/');
    };
    const dir = freshDir();
    const room = 4095 - dir.length - 1;
    const fits = pathOf(room, 'a');
    await unpackLayer(blob(await buildTar([{ name: fits, body: 'fits' }])), dir);
    expect(readFileSync(join(dir, fits), 'utf8')).toBe('fits');

    const over = freshDir();
    const tooLong = pathOf(4095 - over.length, 'b');
    const err = await unpackLayer(blob(await buildTar([{ name: tooLong, body: 'no' }])), over).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/entry whose path is too long to unpack on this node: \d+ bytes, 4096 under the layer's directory.*PATH_MAX.*"bbbb/);
    // A hardlink whose target is too long is refused the same way, before anything is linked.
    const link = freshDir();
    const target = pathOf(4095 - link.length, 'c');
    const linkErr = await unpackLayer(blob(await buildTar([{ name: 'l', type: 'link', linkname: target }])), link).catch((e: unknown) => e);
    expect(linkErr).toBeInstanceOf(InvalidArgumentError);
    expect((linkErr as Error).message).toContain('PATH_MAX');
  });

  it('unpacks names of NAME_MAX bytes and symlink targets of PATH_MAX - 1, and refuses longer ones by name', async () => {
    const dir = freshDir();
    const longest = `d/${'n'.repeat(255)}`;
    await unpackLayer(blob(await buildTar([
      { name: longest, body: 'fits' },
      { name: 'to-far', type: 'symlink', linkname: 't'.repeat(4095) },
    ])), dir);
    expect(readFileSync(join(dir, longest), 'utf8')).toBe('fits');
    expect(readlinkSync(join(dir, 'to-far'))).toHaveLength(4095);

    const nameErr = await unpackLayer(blob(await buildTar([{ name: `d/${'n'.repeat(256)}/f`, body: 'no' }])), freshDir())
      .catch((e: unknown) => e);
    expect(nameErr).toBeInstanceOf(InvalidArgumentError);
    expect((nameErr as Error).message).toMatch(/an entry with a name of 256 bytes in its path.*255 \(NAME_MAX\); the entry starts "d\/nnn/);
    const targetErr = await unpackLayer(blob(await buildTar([{ name: 'far', type: 'symlink', linkname: 't'.repeat(4096) }])), freshDir())
      .catch((e: unknown) => e);
    expect(targetErr).toBeInstanceOf(InvalidArgumentError);
    expect((targetErr as Error).message).toMatch(/a symlink whose target is 4096 bytes.*PATH_MAX.*the symlink is "far"/);
  });

  it('refuses an extended attribute the kernel cannot hold by the entry and attribute, not as INTERNAL', async () => {
    const cases: [Record<string, Buffer | string>, RegExp][] = [
      [{ [`user.${'x'.repeat(300)}`]: 'v' }, /entry "f" with an extended attribute "user\.xxx.*its name is 305 bytes, over 255/],
      [{ 'user.big': Buffer.alloc(70_000, 1) }, /entry "f" with an extended attribute "user\.big".*its value is 70000 bytes, over 64 KiB/],
    ];
    for (const [xattrs, message] of cases) {
      const err = await unpackLayer(blob(await buildTar([{ name: 'f', body: 'x', xattrs }])), freshDir()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('rejects a truncated tar, a corrupt gzip stream and a truncated zstd stream', async () => {
    const tar = await buildTar([{ name: 'f', body: Buffer.alloc(5000, 1) }]);
    await expect(unpackLayer(blob(tar.subarray(0, 2048)), freshDir())).rejects.toBeInstanceOf(InvalidArgumentError);
    const gz = gzipLayer(tar);
    gz[20] ^= 0xff;
    await expect(unpackLayer(blob(gz), freshDir())).rejects.toBeInstanceOf(InvalidArgumentError);
    const zst = zstdLayer(tar);
    const err = await unpackLayer(blob(zst.subarray(0, zst.length - 8)), freshDir()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/zstd/);
  });

  describe('refuses layers that escape the target directory', () => {
    for (const [label, entries] of Object.entries(maliciousLayers)) {
      it(label, async () => {
        const sandbox = join(work, `sandbox-${label}`);
        const dir = join(sandbox, 'a', 'b', 'layer');
        const tar = await buildTar(entries);
        const err = await unpackLayer(blob(tar), dir).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InvalidArgumentError);
        // The message names the offending entry.
        const bad = entries[entries.length - 1]!.name;
        expect((err as Error).message).toContain(JSON.stringify(bad));
        for (const f of ['escaped.txt', 'escaped-through-symlink.txt', 'escaped-relative.txt', 'passwd-link']) {
          expect(existsSync(join(sandbox, f))).toBe(false);
          expect(existsSync(join(sandbox, 'a', f))).toBe(false);
          expect(existsSync(join(sandbox, 'a', 'b', f))).toBe(false);
        }
        expect(existsSync('/tmp/escaped-through-symlink.txt')).toBe(false);
        expect(existsSync('/tmp/escaped-absolute.txt')).toBe(false);
      });
    }
  });
});

describe('unpackLayer limits', () => {
  const zeros = (name: string, size: number) => buildTar([{ name, body: Buffer.alloc(size) }]);

  for (const [kind, make] of [['gzip', gzipLayer], ['zstd', zstdLayer], ['plain', (t: Buffer) => t]] as const) {
    it(`stops a ${kind} layer at maxBytes with RESOURCE_EXHAUSTED naming image.max_layer_size`, async () => {
      const dir = freshDir();
      const err = await unpackLayer(blob(make(await zeros('big', 8 << 20))), dir, { maxBytes: 1 << 20, what: 'layer X' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ResourceExhaustedError);
      expect((err as Error).message).toMatch(/^layer X unpacks to more than 1 MiB, over the limit of 1 MiB set by image\.max_layer_size/);
      // Unpacking stopped at the limit: the file holds at most the bytes under it.
      expect(lstatSync(join(dir, 'big')).size).toBeLessThanOrEqual(1 << 20);
    });
  }

  it('counts every layer against one image budget', async () => {
    const budget = new ByteBudget('maxImageBytes', 3 << 20, 'image "i" unpacks to');
    await unpackLayer(blob(gzipLayer(await zeros('a', 2 << 20))), freshDir(), { budget });
    expect(budget.bytes).toBeGreaterThan(2 << 20);
    const err = await unpackLayer(blob(gzipLayer(await zeros('b', 2 << 20))), freshDir(), { budget }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toContain('image "i" unpacks to more than 3 MiB, over the limit of 3 MiB set by image.max_image_size');
  });
});

describe('unpackLayer on a full disk', () => {
  it('fails with RESOURCE_EXHAUSTED naming the file it was writing', async () => {
    const mnt = join(work, `small-${n++}`);
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      const layer = blob(gzipLayer(await buildTar([{ name: 'data/big', body: randomBytes(256 << 10) }])));
      const err = await unpackLayer(layer, join(mnt, 'fs')).then(() => new Error('unpacked'), (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(ResourceExhaustedError);
      expect(err.message).toBe(`write ${join(mnt, 'fs', 'data', 'big')}: no space left on device`);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('unpackLayer directory bookkeeping', () => {
  it('replaces directories and applies only the mtimes of directories that survive', async () => {
    const t1 = new Date('2020-01-01T00:00:00Z');
    const t2 = new Date('2010-01-01T00:00:00Z');
    const n = 2_000;
    const tar = encodeTar([
      ...Array.from({ length: n }, (_, i) => ({ header: { path: `d${i}/sub`, type: 'dir' as const, mtime: t2 } })),
      // Every directory replaced by a file (the old writer rescanned all it knew at each one).
      ...Array.from({ length: n }, (_, i) => ({ header: { path: `d${i}`, type: 'file' as const }, content: Buffer.from('x') })),
      // Removed, then made again: the new entry's mtime applies, the old subtree's does not.
      { header: { path: 'again/old', type: 'dir' as const, mtime: t2 } },
      { header: { path: 'again', type: 'file' as const }, content: Buffer.from('x') },
      { header: { path: 'again', type: 'dir' as const, mtime: t1 } },
      { header: { path: 'keep', type: 'dir' as const, mtime: t1 } },
    ]);
    const dir = freshDir();
    await unpackLayer(blob(tar), dir);
    expect(lstatSync(join(dir, 'd0')).isFile()).toBe(true);
    expect(lstatSync(join(dir, `d${n - 1}`)).isFile()).toBe(true);
    expect(lstatSync(join(dir, 'again')).isDirectory()).toBe(true);
    expect(existsSync(join(dir, 'again/old'))).toBe(false);
    expect(lstatSync(join(dir, 'again')).mtime).toEqual(t1);
    expect(lstatSync(join(dir, 'keep')).mtime).toEqual(t1);
  });

  it('bounds the directory bookkeeping of a layer', async () => {
    const long = 'x'.repeat(200);
    const tar = encodeTar(Array.from({ length: 100 }, (_, i) => ({ header: { path: `${long}${i}`, type: 'dir' as const } })));
    const err = await unpackLayer(blob(tar), freshDir(), { what: 'layer Y', maxBookkeepingBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toMatch(/^layer Y has more directories than crib keeps track of/);
  });
});
