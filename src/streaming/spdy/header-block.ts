// SPDY/3 name/value header blocks (draft 3, section 2.6.10), before compression:
//   count(32) then per pair: name length(32), name, value length(32), value
// Several values of one name travel as one value joined by NUL, which is how Go's http.Header
// with repeated keys crosses the wire. Names are lowercase on the wire; Go's framer rejects the
// whole frame otherwise, so we both produce and demand lowercase.
import { SpdyProtocolError } from './spdy-errors.js';

/** Decoded headers: lowercase names, every value kept (Go's http.Header shape). */
export type SpdyHeaders = Record<string, string[]>;
/** Headers as callers write them; names are lowercased on encoding. */
export type SpdyHeaderInput = Record<string, string | readonly string[]>;

export function encodeHeaderBlock(headers: SpdyHeaderInput): Buffer {
  const pairs: Array<[Buffer, Buffer]> = [];
  const seen = new Set<string>();
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (name.length === 0) throw new RangeError('SPDY header names must not be empty');
    if (seen.has(name)) throw new RangeError(`SPDY header ${name} given twice (names are case-insensitive)`);
    seen.add(name);
    const values = typeof rawValue === 'string' ? [rawValue] : [...rawValue];
    for (const v of values) {
      if (v.includes('\0')) throw new RangeError(`SPDY header ${name} has a value containing NUL`);
    }
    pairs.push([Buffer.from(name, 'utf8'), Buffer.from(values.join('\0'), 'utf8')]);
  }
  let size = 4;
  for (const [n, v] of pairs) size += 8 + n.length + v.length;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(pairs.length, 0);
  let off = 4;
  for (const [n, v] of pairs) {
    out.writeUInt32BE(n.length, off);
    n.copy(out, off + 4);
    off += 4 + n.length;
    out.writeUInt32BE(v.length, off);
    v.copy(out, off + 4);
    off += 4 + v.length;
  }
  return out;
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const fail = (why: string): never => {
    throw new SpdyProtocolError(`malformed SPDY header block: ${why}`);
  };
  if (block.length < 4) fail(`${block.length} bytes is too short for the pair count`);
  const count = block.readUInt32BE(0);
  // Each pair needs at least 8 length bytes; a count beyond that is a lie, checked up front so
  // a hostile count cannot make us loop or allocate.
  if (count > (block.length - 4) / 8) fail(`pair count ${count} does not fit in ${block.length} bytes`);
  const headers: SpdyHeaders = Object.create(null) as SpdyHeaders;
  let off = 4;
  const readField = (what: string): string => {
    if (off + 4 > block.length) fail(`truncated ${what} length`);
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) fail(`${what} length ${len} runs past the end of the block`);
    const text = block.toString('utf8', off, off + len);
    off += len;
    return text;
  };
  for (let i = 0; i < count; i++) {
    const name = readField('name');
    if (name.length === 0) fail('empty header name');
    if (name !== name.toLowerCase()) fail(`header name ${JSON.stringify(name)} is not lowercase`);
    if (Object.prototype.hasOwnProperty.call(headers, name)) fail(`header ${name} appears twice`);
    const value = readField(`value of ${name}`);
    headers[name] = value.split('\0');
  }
  if (off !== block.length) fail(`${block.length - off} bytes left after ${count} pairs`);
  return headers;
}

/** The first value of a header, like Go's http.Header.Get (names are case-insensitive). */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers[name.toLowerCase()]?.[0];
}
