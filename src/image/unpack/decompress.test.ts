import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { gzipLayer, zstdLayer } from '../../../test-support/tar-fixtures.js';
import { compressionOf, decompressor, detectCompression, spawnZstd, zstdBinary } from './decompress.js';

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
    expect(await collect(Readable.from(chunks), decompressor('zstd')!)).toEqual(payload);
    expect(await collect(Readable.from([gzipLayer(payload)]), decompressor('gzip')!)).toEqual(payload);
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
