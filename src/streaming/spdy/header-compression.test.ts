import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SPDY3_HEADER_DICTIONARY } from './dictionary.js';
import { decodeHeaderBlock, encodeHeaderBlock, headerValue } from './header-block.js';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.js';
import { SpdyLimitError, SpdyProtocolError } from './spdy-errors.js';

/** Adler-32 computed independently, to check the dictionary id our deflater announces. */
function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const syncFlush = { dictionary: SPDY3_HEADER_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH };

describe('SPDY/3 header dictionary', () => {
  it('is the 1423-byte spec dictionary (sha256-pinned; starts with the length-prefixed "options", ends with "enq=0.")', () => {
    expect(SPDY3_HEADER_DICTIONARY.length).toBe(1423);
    expect(createHash('sha256').update(SPDY3_HEADER_DICTIONARY).digest('hex'))
      .toBe('51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02');
    expect([...SPDY3_HEADER_DICTIONARY.subarray(0, 11)]).toEqual([0, 0, 0, 7, ...Buffer.from('options')]);
    expect(SPDY3_HEADER_DICTIONARY.subarray(-6).toString()).toBe('enq=0.');
  });
});

describe('name/value header blocks', () => {
  it('encodes the spec layout with lowercase names and NUL-joined values', () => {
    const block = encodeHeaderBlock({ StreamType: 'error', multi: ['a', 'b'] });
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 2]),
      Buffer.from([0, 0, 0, 10]), Buffer.from('streamtype'), Buffer.from([0, 0, 0, 5]), Buffer.from('error'),
      Buffer.from([0, 0, 0, 5]), Buffer.from('multi'), Buffer.from([0, 0, 0, 3]), Buffer.from('a\0b'),
    ]);
    expect(block).toEqual(expected);
    const decoded = decodeHeaderBlock(block);
    expect(decoded).toEqual({ streamtype: ['error'], multi: ['a', 'b'] });
    expect(headerValue(decoded, 'streamType')).toBe('error');
  });

  it.each([
    ['truncated', Buffer.from([0, 0, 0, 1, 0, 0, 0, 4, 0x61])],
    ['a lying pair count', Buffer.from([0x7f, 0, 0, 0, 0, 0, 0, 0])],
    ['trailing bytes', Buffer.concat([encodeHeaderBlock({ a: 'b' }), Buffer.from([1])])],
    ['an uppercase name', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x41, 0, 0, 0, 0])],
    ['an empty name', Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['a duplicate name', Buffer.from([0, 0, 0, 2, 0, 0, 0, 1, 0x61, 0, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 0, 0])],
  ])('rejects %s', (_name, block) => {
    expect(() => decodeHeaderBlock(block)).toThrow(SpdyProtocolError);
  });
});

describe('per-direction zlib contexts', () => {
  it('announces the spec dictionary id, and its blocks inflate with an independent inflater', async () => {
    const c = new HeaderCompressor();
    const raw = encodeHeaderBlock({ streamtype: 'stdout' });
    const compressed = await c.compress(raw);
    // zlib header: CMF, FLG with FDICT set, then the dictionary's Adler-32.
    expect(compressed[1]! & 0x20).toBe(0x20);
    expect(compressed.readUInt32BE(2)).toBe(adler32(SPDY3_HEADER_DICTIONARY));
    // Sync-flushed: the block ends with the empty stored block marker 00 00 ff ff.
    expect([...compressed.subarray(-4)]).toEqual([0, 0, 0xff, 0xff]);
    expect(zlib.inflateSync(compressed, syncFlush)).toEqual(raw);
    c.close();
  });

  it('shares one context across blocks: later blocks only decode after the earlier ones', async () => {
    const c = new HeaderCompressor();
    const raws = ['error', 'stdin', 'stdout', 'stderr', 'resize'].map((t) => encodeHeaderBlock({ streamtype: t, port: '8080' }));
    const blocks = await Promise.all(raws.map((r) => c.compress(r)));
    // Back-references into earlier blocks make later ones tiny, which proves the shared context.
    expect(blocks[4]!.length).toBeLessThan(blocks[0]!.length);
    // An independent inflater fed the whole sequence yields every block in order.
    expect(zlib.inflateSync(Buffer.concat(blocks), syncFlush)).toEqual(Buffer.concat(raws));
    // Ours, block by block, likewise.
    const d = new HeaderDecompressor(64 * 1024);
    for (let i = 0; i < blocks.length; i++) expect(await d.decompress(blocks[i]!)).toEqual(raws[i]);
    // A fresh inflater cannot decode block 2 alone: it depends on the shared history.
    const fresh = new HeaderDecompressor(64 * 1024);
    await expect(fresh.decompress(blocks[2]!)).rejects.toThrow(SpdyProtocolError);
    c.close();
    d.close();
  });

  it('decodes a block produced by an independent deflater primed with the dictionary', async () => {
    const raw = encodeHeaderBlock({ streamtype: 'data', port: '80', requestid: '0' });
    const independent = zlib.deflateSync(raw, { dictionary: SPDY3_HEADER_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const d = new HeaderDecompressor(64 * 1024);
    expect(decodeHeaderBlock(await d.decompress(independent))).toEqual({ streamtype: ['data'], port: ['80'], requestid: ['0'] });
    d.close();
  });

  it('rejects a block compressed with another dictionary', async () => {
    const raw = encodeHeaderBlock({ streamtype: 'data' });
    const wrong = zlib.deflateSync(raw, { dictionary: Buffer.from('not the spdy dictionary'), finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const d = new HeaderDecompressor(64 * 1024);
    await expect(d.decompress(wrong)).rejects.toThrow(SpdyProtocolError);
  });

  it('stops a block that inflates past the limit (a zlib bomb) and fails the context for good', async () => {
    const c = new HeaderCompressor();
    const bomb = await c.compress(Buffer.alloc(4 * 1024 * 1024, 0x61));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const d = new HeaderDecompressor(256 * 1024);
    await expect(d.decompress(bomb)).rejects.toThrow(SpdyLimitError);
    await expect(d.decompress(await c.compress(encodeHeaderBlock({})))).rejects.toThrow();
    c.close();
  });
});
