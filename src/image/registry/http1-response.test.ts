import { describe, expect, it } from 'vitest';
import { BAD_RESPONSE, BODY_TRUNCATED } from './http-failures.js';
import { Http1ResponseParser, MAX_HEAD_BYTES, type ResponseHead } from './http1-response.js';

interface Parsed {
  heads: ResponseHead[];
  body: Buffer;
  ended: number;
  /** Views handed on, each with the buffer it was fed from. */
  views: { view: Uint8Array; fed: Uint8Array }[];
}

/** Feed `bytes` in pieces cut at `cuts`, each piece in a buffer of its own with spare room. */
function parse(bytes: Buffer, cuts: number[], finish = false): Parsed {
  const got: Parsed = { heads: [], body: Buffer.alloc(0), ended: 0, views: [] };
  let fed: Uint8Array = new Uint8Array(0);
  const parser = new Http1ResponseParser({
    head: (h) => got.heads.push(h),
    body: (view) => {
      got.views.push({ view, fed });
      got.body = Buffer.concat([got.body, view]);
    },
    end: () => got.ended++,
  });
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const piece = bytes.subarray(at, cut);
    fed = new Uint8Array(piece.length + 7);
    fed.set(piece);
    parser.feed(fed, piece.length);
    at = cut;
  }
  if (finish) parser.finish();
  return got;
}

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('no error');
}

const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));

describe('Http1ResponseParser', () => {
  it('parses a Content-Length response cut at every byte, one view of the fed buffer per read', () => {
    const bytes = Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 300\r\nX-Twice: a\r\nx-twice:  b \r\n\r\n'), payload,
      Buffer.from('ignored: bytes after the body'),
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const got = parse(bytes, [cut]);
      expect(got.heads).toEqual([{ statusCode: 200, headers: { 'content-length': '300', 'x-twice': ['a', 'b'] } }]);
      expect(got.body.equals(payload)).toBe(true);
      expect(got.ended).toBe(1);
      for (const { view, fed } of got.views) expect(view.buffer).toBe(fed.buffer);
      expect(new Set(got.views.map((v) => v.fed)).size).toBe(got.views.length);
    }
  });

  it('drops chunked framing, extensions and trailers, cut at every byte, still one view per read', () => {
    const bytes = Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'),
      Buffer.from('64;name=value\r\n'), payload.subarray(0, 100), Buffer.from('\r\n'),
      Buffer.from('C8 \r\n'), payload.subarray(100), Buffer.from('\r\n'),
      Buffer.from('0\r\nTrailer-One: x\r\n\r\n'),
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      for (const cuts of [[cut], [Math.floor(cut / 2), cut]]) {
        const got = parse(bytes, cuts.filter((c, i, a) => c > 0 && a.indexOf(c) === i));
        expect(got.body.equals(payload)).toBe(true);
        expect(got.ended).toBe(1);
        expect(new Set(got.views.map((v) => v.fed)).size).toBe(got.views.length);
      }
    }
    // All in one read: the two chunks' data become one contiguous view.
    const whole = parse(bytes, []);
    expect(whole.views).toHaveLength(1);
    expect(Buffer.from(whole.views[0]!.view).equals(payload)).toBe(true);
  });

  it('skips interim answers, and reads a body without a length to the end of the connection', () => {
    const bytes = Buffer.concat([Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n'), payload]);
    const got = parse(bytes, [10, 40], true);
    expect(got.heads.map((h) => h.statusCode)).toEqual([200]);
    expect(got.body.equals(payload)).toBe(true);
    expect(got.ended).toBe(1);
  });

  it('says a body the connection cut short was cut short (a resumable failure)', () => {
    const cl = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 301\r\n\r\n'), payload]);
    expect(errorOf(() => parse(cl, [], true))).toMatchObject({ code: BODY_TRUNCATED, message: expect.stringMatching(/before the end of the body/) });
    const chunked = Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab');
    expect(errorOf(() => parse(chunked, [], true)).code).toBe(BODY_TRUNCATED);
    expect(errorOf(() => parse(Buffer.from('HTTP/1.1 200 OK\r\n'), [], true))).toMatchObject({
      code: BODY_TRUNCATED, message: expect.stringMatching(/before the end of its headers/),
    });
  });

  it('refuses malformed and oversized responses, naming what was wrong', () => {
    const bad = (text: string | Buffer, what: RegExp) => {
      const err = errorOf(() => parse(Buffer.isBuffer(text) ? text : Buffer.from(text), []));
      expect(err.code).toBe(BAD_RESPONSE);
      expect(err.message).toMatch(what);
    };
    bad('ICY 200 OK\r\n\r\n', /malformed status line "ICY 200 OK"/);
    bad('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /malformed header line "no colon here"/);
    bad('HTTP/1.1 200 OK\r\n folded: value\r\n\r\n', /malformed header line/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', /invalid Content-Length "5,6"/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length "-1"/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n', /invalid Content-Length/);
    bad('HTTP/1.1 101 Switching Protocols\r\n\r\n', /switched protocols/);
    bad(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, /headers are over 16384 bytes/);
    bad('HTTP/1.1 100 Continue\r\n\r\n'.repeat(MAX_HEAD_BYTES / 20), /interim responses are over/);
    const chunked = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';
    bad(`${chunked}1000000000000\r\n`, /malformed chunk size "1000000000000"/);
    bad(`${chunked}zz\r\n`, /malformed chunk size "zz"/);
    bad(`${chunked}2\r\nabc\r\n`, /more chunk data than the chunk size said/);
    bad(`${chunked}2\nab`, /not ended by CRLF/);
    bad(`${chunked}${'1'.repeat(2000)}`, /chunk line over 1024 bytes/);
    bad(`${chunked}0\r\n${'t: x\r\n'.repeat(MAX_HEAD_BYTES / 6 + 1)}`, /trailers over 16384 bytes/);
  });
});
