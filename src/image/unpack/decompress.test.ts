import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { gzipLayer, zstdLayer } from '../../../test-support/tar-fixtures.js';
import { GzipInflater, compressionOf, detectCompression, spawnZstd, zstdBinary, zstdDecompressor } from './decompress.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-decomp-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(src: Readable, via?: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } });
  await (via ? pipeline(src, via, sink) : pipeline(src, sink));
  return Buffer.concat(out);
}

const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));

describe('decompress', () => {
  it('detects compression from magic bytes', async () => {
    expect(compressionOf(gzipLayer(payload).subarray(0, 4))).toBe('gzip');
    expect(compressionOf(zstdLayer(payload).subarray(0, 4))).toBe('zstd');
    expect(compressionOf(payload.subarray(0, 4))).toBe('none');
    expect(compressionOf(Buffer.alloc(0))).toBe('none');
    const f = join(dir, 'z');
    writeFileSync(f, zstdLayer(payload));
    expect(await detectCompression(f)).toBe('zstd');
  });

  it('the fzstd fallback stream inflates multi-chunk input', async () => {
    const z = zstdLayer(payload);
    const chunks = [];
    for (let i = 0; i < z.length; i += 999) chunks.push(z.subarray(i, i + 999));
    expect(await collect(Readable.from(chunks), zstdDecompressor())).toEqual(payload);
  });

  /** Everything a GzipInflater gives for `chunks`, copied out (it reuses its buffer). */
  const inflate = (chunks: Buffer[]): { out: Buffer; pieces: number } => {
    const out: Buffer[] = [];
    const inflater = new GzipInflater((piece) => out.push(Buffer.from(piece)));
    try {
      for (const c of chunks) inflater.push(c);
      inflater.finish();
    } finally {
      inflater.close();
    }
    return { out: Buffer.concat(out), pieces: out.length };
  };

  it('inflates gzip on the calling thread: any chunking, several members, output past its buffer', () => {
    const big = Buffer.concat(Array.from({ length: 8 }, () => payload));
    const gz = gzipLayer(big);
    expect(inflate([gz]).out).toEqual(big);
    const oneByte = Array.from({ length: gz.length }, (_, i) => gz.subarray(i, i + 1));
    expect(inflate(oneByte).out).toEqual(big);
    // 1.6 MB of output from one push: handed on in pieces of its 256 KiB buffer.
    expect(inflate([gz]).pieces).toBeGreaterThan(6);
    // Members concatenated (pigz, appended layers) inflate as one stream, as gunzip does.
    expect(inflate([Buffer.concat([gzipLayer(payload), gzipLayer(big)])]).out).toEqual(Buffer.concat([payload, big]));
    // Zero padding after the data is ignored, as Node's Gunzip ignores it.
    expect(inflate([gz, Buffer.alloc(512)]).out).toEqual(big);
  });

  it('reports gzip cut short, corrupt or followed by garbage with the zlib code the unpacker maps', () => {
    const gz = gzipLayer(payload);
    expect(() => inflate([gz.subarray(0, gz.length - 10)])).toThrow(expect.objectContaining({ code: 'Z_BUF_ERROR', message: 'unexpected end of file' }));
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xff, 20, 60);
    expect(() => inflate([corrupt])).toThrow(expect.objectContaining({ code: expect.stringMatching(/^Z_/) }));
    expect(() => inflate([gz, Buffer.from('trailing garbage')])).toThrow(expect.objectContaining({ code: 'Z_DATA_ERROR' }));
    expect(() => inflate([Buffer.from('not gzip at all')])).toThrow(expect.objectContaining({ code: 'Z_DATA_ERROR' }));
  });

  it('the zstd CLI path inflates, and reports corrupt input as InvalidArgumentError', async () => {
    const bin = zstdBinary();
    expect(bin).toBeDefined();
    const good = join(dir, 'good.zst');
    writeFileSync(good, zstdLayer(payload));
    const p = spawnZstd(bin!, good);
    expect(await collect(p.stdout)).toEqual(payload);
    await p.done;
    const bad = join(dir, 'bad.zst');
    const z = zstdLayer(payload);
    writeFileSync(bad, z.subarray(0, z.length - 100));
    const q = spawnZstd(bin!, bad);
    await collect(q.stdout);
    await expect(q.done).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
