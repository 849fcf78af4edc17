// TarReader on GNU tar's own output (root: the fixture file carries a security.capability xattr):
// GNU long names, base-256 ids and pre-1970 mtimes, binary PAX xattr values, bad checksums.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import { lsetxattr } from '../../../src/sys/libc.js';
import { TarReader, type TarHeader } from '../../../src/image/unpack/tar-reader.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-tarreader-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Parse `tar`, feeding it in `piece`-byte chunks to exercise every boundary. */
function parse(tar: Buffer, piece: number): { h: TarHeader; body: Buffer }[] {
  const out: { h: TarHeader; parts: Buffer[] }[] = [];
  const r = new TarReader({
    entry: (h) => out.push({ h, parts: [] }),
    data: (c) => out[out.length - 1]!.parts.push(Buffer.from(c)),
    endEntry: () => undefined,
  });
  for (let i = 0; i < tar.length; i += piece) r.push(tar.subarray(i, i + piece));
  r.end();
  expect(r.ended).toBe(true);
  return out.map(({ h, parts }) => ({ h, body: Buffer.concat(parts) }));
}

const LONG_DIR = 'd'.repeat(110);
const LONG_FILE = 'f'.repeat(120);

describe('TarReader', () => {
  beforeAll(() => {
    const src = join(dir, 'src');
    mkdirSync(join(src, LONG_DIR), { recursive: true });
    writeFileSync(join(src, LONG_DIR, LONG_FILE), 'long-named content');
    writeFileSync(join(src, 'caps'), 'x'.repeat(700));
    lsetxattr(join(src, 'caps'), 'security.capability', Buffer.from([1, 0, 0, 2, 0x80, 0x04, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    execFileSync('tar', ['--format=gnu', '--owner=big:3000000', '--group=big:4000000', '-cf', join(dir, 'gnu.tar'), '-C', src, '.']);
    execFileSync('tar', ['--format=gnu', '--mtime=1960-01-01 00:00:00 UTC', '-cf', join(dir, 'old.tar'), '-C', src, 'caps']);
    execFileSync('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '-cf', join(dir, 'posix.tar'), '-C', src, '.']);
  });

  for (const piece of [7, 512, 1 << 20]) {
    it(`reads GNU long names and base-256 ids in ${piece}-byte chunks`, () => {
      const entries = parse(readFileSync(join(dir, 'gnu.tar')), piece);
      const long = entries.find((e) => e.h.name.endsWith(LONG_FILE))!;
      expect(long.h.name).toBe(`./${LONG_DIR}/${LONG_FILE}`);
      expect(long.h.type).toBe('file');
      expect(long.body.toString()).toBe('long-named content');
      expect([long.h.uid, long.h.gid]).toEqual([3_000_000, 4_000_000]);
      expect(entries.find((e) => e.h.name === `./${LONG_DIR}/`)?.h.type).toBe('dir');
    });
  }

  it('reads a negative (pre-1970) base-256 mtime', () => {
    const [caps] = parse(readFileSync(join(dir, 'old.tar')), 512);
    expect(caps!.h.mtime).toBe(Date.UTC(1960, 0, 1) / 1000);
  });

  it('keeps binary PAX xattr values byte for byte', () => {
    const entries = parse(readFileSync(join(dir, 'posix.tar')), 100);
    const caps = entries.find((e) => e.h.name === './caps')!;
    expect(caps.h.xattrs.get('security.capability')).toEqual(
      Buffer.from([1, 0, 0, 2, 0x80, 0x04, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(caps.body.length).toBe(700);
  });

  it('refuses a header with a bad checksum and a tar cut mid-entry', () => {
    const tar = Buffer.from(readFileSync(join(dir, 'gnu.tar')));
    tar[0] ^= 1;
    expect(() => parse(tar, 512)).toThrow(InvalidArgumentError);
    const cut = readFileSync(join(dir, 'posix.tar')).subarray(0, 2048 + 100);
    const r = new TarReader({ entry: () => undefined, data: () => undefined, endEntry: () => undefined });
    r.push(cut);
    expect(() => r.end()).toThrow(/truncated/);
  });
});
