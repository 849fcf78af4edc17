// TarReader's bounds, on tars written by test-support/tar-writer. Reading GNU tar's own output
// (long names, base-256 fields, PAX xattrs of files with capabilities) needs root to make the
// files: root-test/image/unpack/tar-reader.test.ts.
import { describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../errors.js';
import { encodeTar, type TarHeader as WriterHeader } from '../../../test-support/tar-writer.js';
import { TarReader } from './tar-reader.js';

/** Rewrite a header block's checksum field to `sum` (octal, as tar writes it). */
function setChecksum(block: Buffer, sum: number): void {
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
}

describe('TarReader headers', () => {
  const entries = (tar: Buffer): { name: string; mtime: number }[] => {
    const seen: { name: string; mtime: number }[] = [];
    new TarReader({ entry: (h) => void seen.push({ name: h.name, mtime: h.mtime }), data: () => undefined, endEntry: () => undefined }).push(tar);
    return seen;
  };

  it('takes a checksum summed as unsigned or as signed chars, and refuses any other', () => {
    const tar = Buffer.from(encodeTar([{ header: { path: 'caf\u00e9/\u00fcber', type: 'file', mtime: new Date(5000) }, content: Buffer.from('x') }]));
    expect(entries(tar)).toEqual([{ name: 'caf\u00e9/\u00fcber', mtime: 5 }]);
    let unsigned = 8 * 0x20;
    let high = 0;
    for (let i = 0; i < 512; i++) {
      if (i >= 148 && i < 156) continue;
      unsigned += tar[i]!;
      if (tar[i]! > 127) high += 1;
    }
    expect(high).toBe(4); // two 2-byte UTF-8 characters
    setChecksum(tar, unsigned - 256 * high);
    expect(entries(tar).map((e) => e.name)).toEqual(['caf\u00e9/\u00fcber']);
    for (const wrong of [unsigned + 1, unsigned - 256 * high - 1, unsigned - 256]) {
      setChecksum(tar, wrong);
      expect(() => entries(tar)).toThrow(/corrupt header at byte 0 \(bad checksum\)/);
    }
  });

  it('joins a ustar header\'s prefix to its name, and ignores that field in a GNU header', () => {
    const tar = Buffer.from(encodeTar([{ header: { path: 'name', type: 'file' }, content: Buffer.from('x') }]));
    const prefix = 'p'.repeat(120);
    tar.write(prefix, 345, 'ascii');
    const resum = (): void => {
      let sum = 8 * 0x20;
      for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += tar[i]!;
      setChecksum(tar, sum);
    };
    resum();
    expect(entries(tar).map((e) => e.name)).toEqual([`${prefix}/name`]);
    tar.write('ustar  \0', 257, 'ascii'); // GNU's magic: that field holds times, not a prefix
    resum();
    expect(entries(tar).map((e) => e.name)).toEqual(['name']);
  });

  it('lets a PAX record override the header', () => {
    const tar = encodeTar([{ header: { path: 'plain', type: 'file', pax: { mtime: Buffer.from('7.5') } }, content: Buffer.from('x') }]);
    expect(entries(tar)).toEqual([{ name: 'plain', mtime: 7.5 }]);
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
