// The HTTP/2 filter in front of the gRPC server, fed raw frames: it must keep HPACK state in step
// with both peers and bound what a client can make it hold.
import hpack from 'hpack.js';
import { describe, expect, it } from 'vitest';
import { H2_PREFACE, h2Frame } from '../../test-support/h2-frames.js';
import {
  AuthorityRewrite, H2_COMPRESSION_ERROR, H2_ENHANCE_YOUR_CALM, H2_FRAME_SIZE_ERROR, H2_PROTOCOL_ERROR,
  Http2ConnectionError, MAX_CONTINUATIONS, MAX_HEADER_LIST_BYTES,
} from './authority-rewrite.js';

const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_HEADERS = 0x4;

/** Feed chunks through a filter; resolves with its output frames or the error it ended with. */
function run(chunks: Buffer[]): Promise<{ out: Buffer; err?: Error; fed: number }> {
  return new Promise((resolve) => {
    const f = new AuthorityRewrite();
    const out: Buffer[] = [];
    let fed = 0;
    let done = false;
    f.on('data', (d: Buffer) => out.push(d));
    f.on('error', (err) => {
      done = true;
      resolve({ out: Buffer.concat(out), err, fed });
    });
    f.on('end', () => resolve({ out: Buffer.concat(out), fed }));
    const feed = (i: number): void => {
      if (done) return;
      if (i === chunks.length) {
        f.end();
        return;
      }
      fed += chunks[i]!.length;
      f.write(chunks[i]!, () => setImmediate(() => feed(i + 1)));
    };
    f.write(H2_PREFACE, () => feed(0));
    f.resume();
  });
}

/** Split filter output (after the preface) into frames. */
function frames(out: Buffer): { type: number; flags: number; stream: number; payload: Buffer }[] {
  const res = [];
  let off = H2_PREFACE.length;
  while (off < out.length) {
    const len = out.readUIntBE(off, 3);
    res.push({ type: out[off + 3]!, flags: out[off + 4]!, stream: out.readUInt32BE(off + 5), payload: out.subarray(off + 9, off + 9 + len) });
    off += 9 + len;
  }
  return res;
}

/**
 * 200 header blocks through the filter, decoded as the server would (a 4096-byte table); each
 * must be what the client sent with the socket path as :authority replaced by localhost.
 */
async function checkInStep(authority: (i: number) => string): Promise<void> {
    // The client's encoder and the server's decoder evict at 4096 bytes, as HTTP/2 requires.
    const client = hpack.compressor.create({ table: { maxSize: 4096 } });
    const server = hpack.decompressor.create({ table: { maxSize: 4096 } });
    const sent: { name: string; value: string }[][] = [];
    const chunks: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      // 25 values of ~240 bytes cycling: repeats are older than the table holds.
      const headers = [
        { name: ':method', value: 'POST', neverIndex: false },
        { name: ':path', value: '/runtime.v1.RuntimeService/Version', neverIndex: false },
        { name: ':authority', value: authority(i), neverIndex: false },
        { name: 'x-probe', value: `value-${i % 25}-${'x'.repeat(200)}`, neverIndex: false },
        { name: 'x-secret', value: `s${i % 3}\u00ff\u0001`, neverIndex: true },
      ];
      sent.push(headers.map((h) => ({ name: h.name, value: h.name === ':authority' ? 'localhost' : h.value })));
      client.write(headers);
      const parts: Buffer[] = [];
      for (let b = client.read(); b !== null; b = client.read()) parts.push(b);
      chunks.push(h2Frame(HEADERS, END_HEADERS | 0x1, 1 + 2 * i, Buffer.concat(parts)));
    }
    const { out, err } = await run(chunks);
    expect(err).toBeUndefined();
    const got = frames(out);
    expect(got).toHaveLength(200);
    got.forEach((f, i) => {
      server.write(f.payload);
      server.execute();
      const headers = [];
      for (let h = server.read(); h !== null; h = server.read()) headers.push({ name: h.name, value: h.value });
      expect(headers, `block ${i}`).toEqual(sent[i]);
    });
}

describe('AuthorityRewrite', () => {
  it('keeps HPACK in step with 4096-byte tables on both sides over many blocks', async () => {
    await checkInStep((i) => (i % 2 ? 'localhost' : '/run/crib/crib.sock'));
  });

  it('keeps HPACK in step when the first rewrite comes after blocks passed on unchanged', async () => {
    // The server's table then holds what the client indexed before the rewrite, which the
    // re-encoded blocks after it must not depend on.
    await checkInStep((i) => (i >= 60 && i % 7 === 0 ? '/run/crib/crib.sock' : 'localhost'));
  });

  it('passes a block with a valid :authority on as the client framed it', async () => {
    const client = hpack.compressor.create({ table: { maxSize: 4096 } });
    client.write([
      { name: ':method', value: 'POST', neverIndex: false },
      { name: ':authority', value: 'localhost', neverIndex: false },
    ]);
    const block = client.read() as Buffer;
    const frames1 = [h2Frame(HEADERS, 0, 1, block.subarray(0, 3)), h2Frame(CONTINUATION, END_HEADERS, 1, block.subarray(3))];
    const { out, err } = await run(frames1);
    expect(err).toBeUndefined();
    expect(out.subarray(H2_PREFACE.length)).toEqual(Buffer.concat(frames1));
  });

  it(`ends a connection whose header block runs past ${MAX_CONTINUATIONS} CONTINUATION frames (empty ones too)`, async () => {
    const chunks = [h2Frame(HEADERS, 0, 1, Buffer.from([0x82]))];
    // A flood of empty CONTINUATIONs: no bytes to count, so only a frame count stops it.
    for (let i = 0; i < 100_000; i++) chunks.push(h2Frame(CONTINUATION, 0, 1, Buffer.alloc(0)));
    const { err, fed } = await run([Buffer.concat(chunks)]);
    expect(err).toBeInstanceOf(Http2ConnectionError);
    expect((err as Http2ConnectionError).code).toBe(H2_ENHANCE_YOUR_CALM);
    expect(err!.message).toBe(`crib: header block of stream 1 is over ${MAX_CONTINUATIONS} CONTINUATION frames`);
    expect(fed).toBeGreaterThan(0);
  });

  it(`takes a header block of HEADERS and ${MAX_CONTINUATIONS} CONTINUATION frames`, async () => {
    const chunks = [h2Frame(HEADERS, 0, 1, Buffer.from([0x82]))];
    for (let i = 0; i < MAX_CONTINUATIONS - 1; i++) chunks.push(h2Frame(CONTINUATION, 0, 1, Buffer.alloc(0)));
    chunks.push(h2Frame(CONTINUATION, END_HEADERS, 1, Buffer.from([0x84])));
    const { err } = await run(chunks);
    expect(err).toBeUndefined();
  });

  it('ends a connection whose header block grows past the limit, without holding it', async () => {
    const chunks = [h2Frame(HEADERS, 0, 1, Buffer.alloc(1000, 0x40))];
    // 64 MiB of CONTINUATION offered; the filter must give up after 64 KiB.
    for (let i = 0; i < 4096; i++) chunks.push(h2Frame(CONTINUATION, 0, 1, Buffer.alloc(16384, 0x40)));
    const { err, fed } = await run(chunks);
    expect(err).toBeInstanceOf(Http2ConnectionError);
    expect((err as Http2ConnectionError).code).toBe(H2_ENHANCE_YOUR_CALM);
    expect(err!.message).toBe(`crib: header block of stream 1 is over ${MAX_HEADER_LIST_BYTES} bytes (the header list limit)`);
    expect(fed).toBeLessThan(MAX_HEADER_LIST_BYTES + 2 * 16384 + 1000);
  });

  it('refuses an oversized frame from its header, before its payload arrives', async () => {
    const head = h2Frame(0x0, 0, 1, Buffer.alloc(0));
    head.writeUIntBE(16 * 1024 * 1024 - 1, 0, 3);
    const { err } = await run([head]);
    expect((err as Http2ConnectionError).code).toBe(H2_FRAME_SIZE_ERROR);
    expect(err!.message).toMatch(/frame of 16777215 bytes is larger than SETTINGS_MAX_FRAME_SIZE 16384/);
  });

  it('refuses another frame inside a header block', async () => {
    const { err } = await run([h2Frame(HEADERS, 0, 1, Buffer.from([0x82])), h2Frame(0x0, 0, 1, Buffer.from('data'))]);
    expect((err as Http2ConnectionError).code).toBe(H2_PROTOCOL_ERROR);
  });

  it('refuses a header block that decodes to more than the limit (an HPACK bomb)', async () => {
    // One literal of ~4000 bytes with incremental indexing, then 16 KiB of one-byte references
    // to it: 16 KiB on the wire, 64 MiB decoded.
    const enc = hpack.compressor.create({ table: { maxSize: 4096 } });
    enc.write([{ name: 'x-big', value: 'b'.repeat(4000), neverIndex: false }]);
    const first = enc.read() as Buffer;
    const bomb = Buffer.concat([first, Buffer.alloc(16000, 0x80 | 62)]);
    const { err } = await run([h2Frame(HEADERS, 0, 1, bomb.subarray(0, 16000)), h2Frame(CONTINUATION, END_HEADERS, 1, bomb.subarray(16000))]);
    expect((err as Http2ConnectionError).code).toBe(H2_ENHANCE_YOUR_CALM);
    expect(err!.message).toMatch(/header list of stream 1 decodes to over 65536 bytes/);
  });

  it('refuses a header block that does not decode', async () => {
    const { err } = await run([h2Frame(HEADERS, END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]))]);
    expect((err as Http2ConnectionError).code).toBe(H2_COMPRESSION_ERROR);
  });
});
