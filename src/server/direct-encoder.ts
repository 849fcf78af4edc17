// Encodes a plain response object straight to protobuf bytes, for the few large messages the
// daemon sends over and over (the stats listings: kubelet asks for 200 containers' stats every
// 10 s, about 60-80 KB a time).
//
// Why not protobufjs's own path (fromObject, then encode): fromObject first builds a message
// object for every nested message, and turns every int64 field (each counter is one, twice per
// UInt64Value) from its decimal string into a Long; encode then walks those again through a
// writer that queues one closure per field. For a 200-container listing that was 6-8 ms of
// fromObject and as much again of encode on this project's (loaded) 2-core machine, and much
// of the listing's garbage; written directly, the same bytes took 2-5 ms there.
//
// Like protobufjs, each message type gets a function generated for it (new Function), whose
// property reads and field writes are then specialised by the JIT; the values are written
// straight into one scratch buffer, a nested message's length put in front of it afterwards.
//
// The output is byte for byte what fromObject + encode give for the same object (the tests
// compare both on full messages): the same fields in the same order (by field number), a
// field written whenever fromObject would set it (present and not null; proto3 zeros and empty
// strings included, as protobufjs writes them), maps in key order, the same UTF-8 bytes. Where
// protobufjs would coerce a value silently (a non-numeric string in an int64 field), this
// refuses it with a TypeError naming the field: such a value is a bug in the daemon, not
// something to send. Message types holding kinds of field it does not handle (bytes, repeated
// enums, groups, non-string map keys) are refused at compile time; the caller then keeps
// protobufjs's path for them.
//
// A nested message object can carry its own body, encoded beforehand (withEncodedBody): the
// stats collector encodes each container's ContainerStats (and each pod's PodSandboxStats)
// when its reading lands, before the listing that sends it comes, and the same object serves
// every listing that holds it (ListContainerStats, and its pod's entry in ListPodSandboxStats).
// Its bytes are then copied in, not written field by field while the caller waits.
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';

const protobuf = createRequire(import.meta.url)('protobufjs/light.js') as typeof Protobuf;
// protobufjs writes strings under 40 UTF-16 units with its own UTF-8 writer; its bytes differ
// from Buffer's for lone surrogates, so the same writer is used for those.
const utf8Write = (protobuf.util as unknown as { utf8: { write(s: string, buf: Uint8Array, pos: number): number } }).utf8.write;

// protobufjs's nesting limit (util.recursionLimit).
const MAX_DEPTH = 100;
const INITIAL_BUFFER = 64 * 1024;
// A scratch buffer grown past this by one large message is not kept for the next one.
const KEPT_BUFFER = 1024 * 1024;

/** Thrown when a type holds a field this encoder does not handle. */
export class UnsupportedTypeError extends Error {}

// The scratch buffer messages are written into, then copied out of. Encoding is synchronous,
// so one buffer serves every call.
let buf = Buffer.allocUnsafe(INITIAL_BUFFER);
let pos = 0;

/** Message objects whose body was encoded beforehand (withEncodedBody), and that body. */
const encodedBodies = new WeakMap<object, Buffer>();

/**
 * `value`, whose encoding as a message of its type is `body` (from compileEncoder of that type,
 * for this very object): wherever it is a nested message of a response, those bytes are copied
 * in. The object must not change afterwards.
 *
 * The body is kept as long as `value` is, so it is kept in memory of its own. A Buffer under
 * 4 KiB is a view of one of Node's shared 8 KiB pool slabs, and a view kept keeps its whole slab:
 * with 100 pods running, the listing entries and statuses encoded for them (listed-messages.ts)
 * held two slabs per pod and container, 16 KiB for ~2 KiB of bodies (heap snapshots at 50 and
 * 100 pods: +101 slabs).
 */
export function withEncodedBody<T extends object>(value: T, body: Buffer): T {
  encodedBodies.set(value, body.length === body.buffer.byteLength ? body : copyOwned(body));
  return value;
}

/** The body as an exact-size Buffer of its own. */
function copyOwned(body: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(body.length);
  body.copy(own);
  return own;
}

/** The body withEncodedBody keeps for `value` (tests). */
export function encodedBodyOf(value: object): Buffer | undefined {
  return encodedBodies.get(value);
}

/** A nested message's body encoded beforehand, written with its length. */
function writeBody(body: Buffer): void {
  varint32(body.length);
  ensure(body.length);
  body.copy(buf, pos);
  pos += body.length;
}

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

function varint32(v: number): void {
  ensure(5);
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
}

function varint64(lo: number, hi: number): void {
  ensure(10);
  while (hi !== 0) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
}

const varintSize = (v: number): number => (v < 1 << 7 ? 1 : v < 1 << 14 ? 2 : v < 1 << 21 ? 3 : v < 1 << 28 ? 4 : 5);

const TWO_32 = 2 ** 32;
const DECIMAL = /^-?\d+$/;

/** A 64-bit integer field's value, two's complement (as Long.fromValue reads it). */
function writeInt64(v: unknown, field: string): void {
  if (typeof v === 'string') {
    if (writeDecimal(v)) return;
    if (!DECIMAL.test(v)) throw new TypeError(`${field}: integer expected, got "${v.slice(0, 40)}"`);
    writeBigInt(BigInt(v));
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`${field}: integer expected, got ${v}`);
    if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) varint64(v >>> 0, Math.floor(v / TWO_32));
    else writeBigInt(BigInt(v));
    return;
  }
  if (typeof v === 'bigint') {
    writeBigInt(v);
    return;
  }
  if (typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number') {
    const l = v as { low: number; high: number };
    varint64(l.low >>> 0, l.high >>> 0);
    return;
  }
  throw new TypeError(`${field}: integer expected, got ${typeof v}`);
}

/**
 * Writes a decimal string of up to 19 digits (below 10^19 < 2^64: a nanosecond timestamp, any
 * counter) as a varint, from two exact double-precision parts; false: not such a string.
 */
function writeDecimal(v: string): boolean {
  const len = v.length;
  if (len === 0 || len > 19) return false;
  // value = high * 10^9 + low, each part below 2^53 and so exact.
  const split = len > 9 ? len - 9 : 0;
  let high = 0;
  let low = 0;
  for (let i = 0; i < len; i++) {
    const c = v.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return false;
    if (i < split) high = high * 10 + c;
    else low = low * 10 + c;
  }
  if (high === 0) {
    varint64(low >>> 0, 0);
    return true;
  }
  if (high < 9_007_198) {
    // high * 10^9 + low < 2^53: exact as one number.
    const n = high * 1e9 + low;
    varint64(n >>> 0, Math.floor(n / TWO_32));
    return true;
  }
  // high < 10^10 < 2^34: high * 10^9 = (hh * 2^16 + hl) * 10^9, every product below 2^53.
  const hh = Math.floor(high / 65536);
  const hl = high - hh * 65536;
  const a = hl * 1e9 + low; // < 2^47
  const b = hh * 1e9; // < 2^48, worth b * 2^16
  const bl = b % 65536;
  const t = bl * 65536 + a; // < 2^48
  const lo = t % TWO_32;
  const hi = (b - bl) / 65536 + Math.floor(t / TWO_32);
  varint64(lo >>> 0, hi >>> 0);
  return true;
}

function writeBigInt(v: bigint): void {
  const u = BigInt.asUintN(64, v);
  varint64(Number(u & 0xffffffffn), Number(u >> 32n));
}

function writeString(s: string): void {
  const units = s.length;
  if (units < 128) {
    // Short and (usually) ASCII: length byte and bytes written in one pass, no native call.
    ensure(units + 1);
    const start = pos;
    buf[pos++] = units;
    let i = 0;
    for (; i < units; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos++] = c;
    }
    if (i === units) return;
    pos = start;
  }
  const len = Buffer.byteLength(s);
  varint32(len);
  ensure(len);
  // As many bytes as units: all ASCII, where every writer gives the same bytes.
  if (len === s.length) buf.write(s, pos, len, 'latin1');
  else if (s.length < 40) utf8Write(s, buf, pos);
  else buf.write(s, pos, len, 'utf8');
  pos += len;
}

/** Starts a length-delimited body: one byte is kept for its length (the usual case). */
function begin(): number {
  ensure(1);
  return pos++;
}

/** Ends the body begun at `start`: its length goes in front of it. */
function end(start: number): void {
  const len = pos - start - 1;
  if (len < 128) {
    buf[start] = len;
    return;
  }
  // The length takes more than the one byte kept for it: the body moves up.
  const extra = varintSize(len) - 1;
  ensure(extra);
  buf.copyWithin(start + 1 + extra, start + 1, pos);
  const after = pos + extra;
  pos = start;
  varint32(len);
  pos = after;
}

function writeDouble(v: number): void {
  ensure(8);
  buf.writeDoubleLE(v, pos);
  pos += 8;
}

function writeFloat(v: number): void {
  ensure(4);
  buf.writeFloatLE(v, pos);
  pos += 4;
}

/** An int32 (or enum) value: a negative one is sign-extended to 64 bits on the wire. */
function writeInt32(n: number): void {
  if (n >= 0) varint32(n);
  else varint64(n >>> 0, 0xffffffff);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** An enum value as fromObject reads it: a known name or any number; else not set (undefined). */
function enumNumber(values: Record<string, number>, v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(values, v)) return values[v];
  return undefined;
}

function depthExceeded(): never {
  throw new Error('maximum nesting depth exceeded');
}

function objectExpected(field: string): never {
  throw new TypeError(`${field}: object expected`);
}

function arrayExpected(field: string): never {
  throw new TypeError(`${field}: array expected`);
}

/** What generated code calls. */
const helpers = {
  encodedBodies, writeBody, varint32, writeInt32, writeInt64, writeString, writeDouble, writeFloat, begin, end, isObject, enumNumber,
  depthExceeded, objectExpected, arrayExpected,
};

type MessageWriter = (o: Record<string, unknown>, depth: number) => void;

// Wire types.
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;
const WIRE_OF: Record<string, number> = { string: LEN, bool: VARINT, uint32: VARINT, int32: VARINT, int64: VARINT, uint64: VARINT, double: FIXED64, float: FIXED32 };

const tag = (id: number, wire: number) => ((id << 3) | wire) >>> 0;

/**
 * The encoder of message type `type`: compiles its writer and those of the types it holds, but
 * for those an earlier encoder compiled. Throws UnsupportedTypeError when any of them has a field
 * of a kind not handled here, and then keeps none of what it compiled.
 */
export function compileEncoder(type: Protobuf.Type): (value: object) => Buffer {
  const before = writers.length;
  const added: Protobuf.Type[] = [];
  let root: number;
  try {
    root = compileType(type, added);
  } catch (err) {
    // Nothing of a failed compile is kept: a type it registered may hold the failing one.
    for (const t of added) compiledAt.delete(t);
    writers.length = before;
    throw err;
  }
  return (value) => {
    pos = 0;
    if (!isObject(value)) throw new TypeError(`${type.fullName}: object expected`);
    try {
      writers[root]!(value, 0);
      const out = Buffer.allocUnsafe(pos);
      buf.copy(out, 0, 0, pos);
      return out;
    } finally {
      if (buf.length > KEPT_BUFFER) buf = Buffer.allocUnsafe(INITIAL_BUFFER);
      pos = 0;
    }
  };
}

// Each type's writer, compiled once for every encoder that holds the type: the stats types sit
// in three listings' and three single calls' responses and in the message encoders the stats
// collector encodes bodies with. A listing's first answer compiled its own copy of each (ten or
// so types, 6-7 ms for ContainerStats's on this project's machine), and kept it. Keyed by the
// type object, not its name: a type of another schema (the tests' own) is another type.
const writers: MessageWriter[] = [];
const compiledAt = new WeakMap<Protobuf.Type, number>();

/** How many message types have a writer compiled (each is compiled once: the tests check it). */
export function compiledTypeCount(): number {
  return writers.length;
}

/** The index in `writers` of `type`'s writer, generated (with those of the types it holds) if
 * new; the types it registers are pushed onto `added`. */
function compileType(type: Protobuf.Type, added: Protobuf.Type[]): number {
  const known = compiledAt.get(type);
  if (known !== undefined) return known;
  const at = writers.length;
  // Registered before its fields: a type that holds itself finds its own entry.
  compiledAt.set(type, at);
  added.push(type);
  writers.push(() => undefined);
  const enums: Record<string, number>[] = [];
  const body: string[] = [`if (d > ${MAX_DEPTH}) h.depthExceeded();`, 'let v;'];
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    field.resolve();
    body.push(fieldCode(field, added, enums));
  }
  // Only names from the compiled schema reach the source, each as a JSON string literal.
  const make = new Function('h', 'W', 'E', `return function ${JSON.stringify(type.name).slice(1, -1).replace(/\W/g, '_')}$directEncode(o, d) {\n${body.join('\n')}\n};`) as
    (h: typeof helpers, W: MessageWriter[], E: Record<string, number>[]) => MessageWriter;
  writers[at] = make(helpers, writers, enums);
  return at;
}

/** Source that writes field `field` of message `o` (depth `d`) when fromObject would set it. */
function fieldCode(field: Protobuf.Field, added: Protobuf.Type[], enums: Record<string, number>[]): string {
  const unsupported = (what: string) => new UnsupportedTypeError(`${field.fullName}: ${what} is not handled by the direct encoder`);
  if (field.delimited) throw unsupported('a group');
  const rt = field.resolvedType;
  const isEnum = rt !== null && !(rt as Protobuf.Type).fieldsArray;
  const message = rt !== null && !isEnum ? compileType(rt as Protobuf.Type, added) : undefined;
  const wire = message !== undefined ? LEN : isEnum ? VARINT : WIRE_OF[field.type];
  if (wire === undefined) throw unsupported(`type ${field.type}`);
  const name = JSON.stringify(field.fullName);
  let enumAt = -1;
  if (isEnum) {
    enumAt = enums.length;
    enums.push((rt as Protobuf.Enum).values);
  }

  /** Source writing scalar value `x` without a tag, as fromObject converts it. */
  const scalar = (x: string): string => {
    switch (field.type) {
      case 'string': return `h.writeString(String(${x}));`;
      case 'bool': return `h.varint32(${x} ? 1 : 0);`;
      case 'uint32': return `h.varint32(${x} >>> 0);`;
      case 'int32': return `h.writeInt32(${x} | 0);`;
      case 'int64':
      case 'uint64': return `h.writeInt64(${x}, ${name});`;
      case 'double': return `h.writeDouble(Number(${x}));`;
      case 'float': return `h.writeFloat(Number(${x}));`;
      default: throw unsupported(`type ${field.type}`);
    }
  };
  /** Source writing value `x` under tag `t`, as fromObject converts it. */
  const one = (x: string, t: number): string => {
    if (message !== undefined) {
      return `{ if (!h.isObject(${x})) h.objectExpected(${name}); h.varint32(${t}); const b = h.encodedBodies.get(${x});
        if (b !== undefined) h.writeBody(b); else { const s = h.begin(); W[${message}](${x}, d + 1); h.end(s); } }`;
    }
    if (isEnum) return `{ const n = h.enumNumber(E[${enumAt}], ${x}); if (n !== undefined) { h.varint32(${t}); h.writeInt32(n | 0); } }`;
    return `h.varint32(${t}); ${scalar(x)}`;
  };

  const read = `v = o[${JSON.stringify(field.name)}];`;
  if (field.map) {
    const keyType = (field as unknown as Protobuf.MapField).keyType;
    if (keyType !== 'string') throw unsupported(`a map with ${keyType} keys`);
    // fromObject takes a map only when it is truthy, and refuses one that is not an object.
    return `${read} if (v) { if (!h.isObject(v)) h.objectExpected(${name}); const m = v;
      for (const k of Object.keys(m)) { h.varint32(${tag(field.id, LEN)}); const e = h.begin(); h.varint32(${tag(1, LEN)}); h.writeString(k);
        const x = m[k]; ${one('x', tag(2, wire))} h.end(e); } }`;
  }
  if (field.repeated) {
    if (message === undefined && field.type !== 'string') {
      // Numbers: packed, as proto3 has them (one length-delimited run, none at all when empty),
      // or each under its own tag when the schema says packed=false. Enums are not handled.
      if (isEnum) throw unsupported('a repeated enum');
      if (!field.packed) {
        return `${read} if (v) { if (!Array.isArray(v)) h.arrayExpected(${name}); const a = v;
          for (let i = 0; i < a.length; i++) { const x = a[i]; ${one('x', tag(field.id, wire))} } }`;
      }
      return `${read} if (v) { if (!Array.isArray(v)) h.arrayExpected(${name}); const a = v;
        if (a.length > 0) { h.varint32(${tag(field.id, LEN)}); const e = h.begin();
          for (let i = 0; i < a.length; i++) { const x = a[i]; ${scalar('x')} } h.end(e); } }`;
    }
    return `${read} if (v) { if (!Array.isArray(v)) h.arrayExpected(${name}); const a = v;
      for (let i = 0; i < a.length; i++) { const x = a[i]; ${one('x', tag(field.id, LEN))} } }`;
  }
  // An enum is written only for a known name or a number (null included: nothing).
  return `${read} if (v != null) { const x = v; ${one('x', tag(field.id, wire))} }`;
}
