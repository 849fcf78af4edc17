import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ResourceExhaustedError } from '../../errors.js';
import { lsetxattr } from '../../sys/libc.js';
import { encodeTar, type TarHeader as WriterHeader } from '../../../test-support/tar-writer.js';
import { TarReader, type TarHeader } from './tar-reader.js';

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

describe('TarReader bounds', () => {
  const sink = { entry: () => undefined, data: () => undefined, endEntry: () => undefined };
  const files = (n: number, extra: Partial<WriterHeader> = {}) =>
    encodeTar(Array.from({ length: n }, (_, i) => ({ header: { path: `f${i}`, type: 'file' as const, ...extra }, content: Buffer.from('x') })));

  it('stops at max entries, naming image.max_layer_entries', () => {
    const r = new TarReader(sink, { maxEntries: 10, what: 'layer L' });
    r.push(files(10));
    expect(() => new TarReader(sink, { maxEntries: 9, what: 'layer L' }).push(files(10))).toThrow(ResourceExhaustedError);
    expect(() => new TarReader(sink, { maxEntries: 9, what: 'layer L' }).push(files(10))).toThrow(/layer L has more than 9 entries.*image\.max_layer_entries/);
  });

  it('refuses a name or link target longer than PATH_MAX before the sink sees it', () => {
    const seen: string[] = [];
    const r = new TarReader({ ...sink, entry: (h) => void seen.push(h.name) }, { what: 'layer L' });
    const tar = encodeTar([
      { header: { path: 'ok', type: 'file' }, content: Buffer.from('x') },
      { header: { path: `${'d/'.repeat(2100)}f`, type: 'file' }, content: Buffer.from('x') },
    ]);
    expect(() => r.push(tar)).toThrow(/name is 4201 bytes.*PATH_MAX/);
    expect(seen).toEqual(['ok']);
    const link = encodeTar([{ header: { path: 'l', type: 'symlink', linkname: 'x'.repeat(5000) } }]);
    expect(() => new TarReader(sink).push(link)).toThrow(/link target is 5000 bytes/);
  });

  it('bounds PAX headers summed over several headers for one entry, and global ones', () => {
    // Each header under the per-header bound, together over it: 3 x 400 KiB of xattrs.
    const big = (i: number) => ({ [`user.a${i}`]: Buffer.alloc(400 << 10, 0x61) });
    const oneEntry = Buffer.concat([0, 1, 2].map((i) => encodeTar([{ header: { path: 'f', type: 'dir', xattrs: big(i) } }]).subarray(0, -1024 - 512)));
    expect(() => new TarReader(sink).push(oneEntry)).toThrow(/PAX headers for one entry of more than 1 MiB/);
    const global = (i: number) => {
      const t = Buffer.from(encodeTar([{ header: { path: 'g', type: 'dir', pax: { [`k${i}`]: Buffer.alloc(400 << 10, 0x62) } } }]));
      t[156] = 'g'.charCodeAt(0); // the PAX header becomes a global one; fix its checksum
      t.fill(' ', 148, 156);
      let sum = 0;
      for (let j = 0; j < 512; j++) sum += t[j]!;
      t.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
      return t.subarray(0, -1024);
    };
    const r = new TarReader(sink);
    expect(() => { for (const i of [0, 1, 2]) r.push(global(i)); }).toThrow(/global PAX headers of more than 1 MiB/);
  });
});
