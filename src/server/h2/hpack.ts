// HPACK (RFC 7541) for crib's own HTTP/2 server: the decoder for the header blocks clients send,
// and the stateless literal encoder for the blocks we send back.
//
// The decoder runs on every gRPC call, in a daemon whose V8 has no optimising compiler, so it is
// written as plain loops over Buffer bytes: no regexes, no closures per byte, no Buffer.concat.
// Huffman strings go through a nibble-driven state machine built once at load from the code
// lengths, and the dynamic table is a ring of fixed capacity, so no step is worse than O(1) per
// byte or per field. A client is not trusted: every integer, index and length is checked against
// the block, and the decoded list is bounded as it grows, so a small block that references one
// large table entry thousands of times (the "HPACK bomb") is refused before it is decoded.
//
// The encoder writes only literals "without indexing" with literal names and no Huffman: neither
// side's dynamic table is touched, so our replies need no encoder state and cannot go out of step
// with the client's decoder.

/** A header block broke HPACK or a bound: the connection ends with GOAWAY(code). */
export class HpackError extends Error {
  constructor(readonly code: number /* HTTP/2 error code */, message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

export const H2_COMPRESSION_ERROR = 0x9;
export const H2_ENHANCE_YOUR_CALM = 0xb;
/** RFC 7541 §4.1: each header list entry costs its name and value plus 32. */
export const HPACK_ENTRY_OVERHEAD = 32;

/** Node's Buffer has latin1Slice and latin1Write (one char per byte, no encoding dispatch); @types/node omits them. */
type Latin1Buffer = Buffer & {
  latin1Slice(start: number, end: number): string;
  latin1Write(text: string, offset: number): number;
};

function malformed(message: string): HpackError {
  return new HpackError(H2_COMPRESSION_ERROR, message);
}

function overListLimit(maxHeaderListBytes: number): HpackError {
  return new HpackError(H2_ENHANCE_YOUR_CALM, `header list decodes to over ${maxHeaderListBytes} bytes (maxHeaderListBytes)`);
}

// RFC 7541 Appendix A. Index 0 is unused so that a field's HPACK index is its array index.
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1; // 61
// Two flat arrays: a lookup is then two loads, not a load of a tuple and two more.
const STATIC_NAMES = STATIC_TABLE.map((entry) => entry[0]);
const STATIC_VALUES = STATIC_TABLE.map((entry) => entry[1]);
const STATIC_SIZES = STATIC_TABLE.map((entry) => entry[0].length + entry[1].length + HPACK_ENTRY_OVERHEAD);

// ---- Huffman (RFC 7541 §5.2, Appendix B) ----
//
// The code is canonical, so each symbol's code length determines it. One char per symbol
// (0..255, then EOS = 256), length = charCode - 43.
const HUFFMAN_CODE_LENGTHS =
  '8BGGGGGGGCIGGIGGGGGGGGIGGGGGGGGG1557813655363111000111111123:1758122222222222222222222223238>891:01010111' +
  '022111012100122222:698G?A??AAABABBBBBCBCCABCBBBB@ABABBCA@?AABB@BAAC@ABB@@A@BABB?AAABAABEE?>ABADEEEFFECD>@' +
  'EFFEFC@@EEGFFF?C?@A@@BAADDCCEBEFEEFFFFFGFFFFFEI';
const HUFFMAN_EOS = 256;

// The decoder walks the code tree a nibble at a time. A state is an internal node of the tree
// (the bits read since the last symbol); there are exactly 256 of them, the root being 0. Every
// code is at least 5 bits long, so a nibble completes at most one symbol. The transition for
// (state, nibble) is at index state * 16 + nibble, and packs what the loop needs with the fewest
// operations: bits 4-11 the next state already times 16, bits 12-19 the symbol completed, if any,
// with bit 20 set (so "a symbol completed" is entry >= HUFFMAN_EMITTED); -1 if the nibble
// completed EOS, which must never appear inside a string.
const HUFFMAN_EMITTED = 0x100000;
const { transitions: HUFFMAN_TRANSITIONS, paddingDepth: HUFFMAN_PADDING_DEPTH } = buildHuffmanDecoder();

function buildHuffmanDecoder(): { transitions: Int32Array; paddingDepth: Int8Array } {
  const lengths = new Uint8Array(257);
  for (let symbol = 0; symbol < 257; symbol++) lengths[symbol] = HUFFMAN_CODE_LENGTHS.charCodeAt(symbol) - 43;
  const order = Array.from({ length: 257 }, (_, symbol) => symbol)
    .sort((a, b) => lengths[a]! - lengths[b]! || a - b);

  // children[2 * node + bit]: an internal node (> 0), a leaf (-1 - symbol), or 0 for "not yet".
  const children = new Int32Array(2 * 256);
  // How many bits of EOS's prefix (all ones) a node is, or -1 if it is off that path: the only
  // states a string may end in (RFC 7541 §5.2: padding is at most 7 bits, the high bits of EOS).
  const paddingDepth = new Int8Array(256).fill(-1);
  paddingDepth[0] = 0;
  let nodeCount = 1;
  let code = 0;
  let previousLength = lengths[order[0]!]!;
  for (let i = 0; i < order.length; i++) {
    const symbol = order[i]!;
    const length = lengths[symbol]!;
    if (i > 0) code = (code + 1) << (length - previousLength);
    previousLength = length;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (bit === 0) {
        if (children[slot] !== 0) throw new Error('HPACK Huffman table: codes collide');
        children[slot] = -1 - symbol;
        break;
      }
      if (children[slot] === 0) {
        if (nodeCount === 256) throw new Error('HPACK Huffman table: more than 256 internal nodes');
        children[slot] = nodeCount;
        paddingDepth[nodeCount] = paddingDepth[node]! >= 0 && (slot & 1) === 1 ? paddingDepth[node]! + 1 : -1;
        nodeCount++;
      }
      node = children[slot]!;
      if (node < 0) throw new Error('HPACK Huffman table: a code extends another');
    }
  }
  // A complete canonical code ends with the all-ones code (EOS) and fills every branch.
  if (nodeCount !== 256 || code !== 0x3fffffff || children.includes(0)) throw new Error('HPACK Huffman table is not complete');

  const transitions = new Int32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let emitted = 0;
      for (let bit = 3; bit >= 0 && emitted >= 0; bit--) {
        const next = children[2 * node + ((nibble >>> bit) & 1)]!;
        if (next >= 0) { node = next; continue; }
        const symbol = -1 - next;
        if (emitted !== 0) throw new Error('HPACK Huffman table: two symbols in one nibble');
        emitted = symbol === HUFFMAN_EOS ? -1 : HUFFMAN_EMITTED | (symbol << 12);
        node = 0;
      }
      transitions[(state << 4) | nibble] = emitted < 0 ? -1 : emitted | (node << 4);
    }
  }
  return { transitions, paddingDepth };
}

// Where the Huffman decoder writes before the bytes become a string. Header values are short;
// a longer one (over 2560 encoded bytes) gets a buffer of its own rather than one kept forever.
const huffmanScratch = Buffer.allocUnsafe(4096);

function decodeHuffman(block: Buffer, start: number, end: number): string {
  // Every code is at least 5 bits, which bounds the decoded length.
  const maxLength = Math.floor(((end - start) * 8) / 5);
  const out = maxLength <= huffmanScratch.length ? huffmanScratch : Buffer.allocUnsafe(maxLength);
  const transitions = HUFFMAN_TRANSITIONS;
  let length = 0;
  let state16 = 0; // the state times 16
  for (let i = start; i < end; i++) {
    const byte = block[i]!;
    let entry = transitions[state16 | (byte >>> 4)]!;
    // A Uint8Array store keeps the low 8 bits: the symbol.
    if (entry >= HUFFMAN_EMITTED) out[length++] = entry >>> 12;
    else if (entry < 0) throw malformed('Huffman string contains the EOS symbol');
    state16 = entry & 0xff0;
    entry = transitions[state16 | (byte & 0xf)]!;
    if (entry >= HUFFMAN_EMITTED) out[length++] = entry >>> 12;
    else if (entry < 0) throw malformed('Huffman string contains the EOS symbol');
    state16 = entry & 0xff0;
  }
  const padding = HUFFMAN_PADDING_DEPTH[state16 >>> 4]!;
  if (padding < 0) throw malformed('Huffman string ends in padding that is not the high bits of EOS');
  if (padding > 7) throw malformed(`Huffman string ends in ${padding} bits of padding (at most 7 allowed)`);
  return (out as Latin1Buffer).latin1Slice(0, length);
}

// ---- Decoder ----

export class HpackDecoder {
  private readonly maxTableBytes: number;
  private readonly maxHeaderListBytes: number;
  /** The table's current size limit: maxTableBytes until the peer sends a size update. */
  private tableLimit: number;
  // The dynamic table, a ring of parallel arrays: the newest entry is at slot `newest`, older
  // ones at lower slots (wrapping). An entry costs at least 32 bytes, so the ring never holds
  // more entries than it has slots. sizes[] holds each entry's §4.1 size.
  private readonly capacity: number;
  private readonly names: string[];
  private readonly values: string[];
  private readonly sizes: number[];
  private newest = 0;
  private count = 0;
  private tableBytes = 0;
  /** Where readInteger and readString left off in the block being decoded. */
  private pos = 0;

  /** maxTableBytes: the SETTINGS_HEADER_TABLE_SIZE we announced (4096): a dynamic table size update above it is a COMPRESSION_ERROR.
   *  maxHeaderListBytes: bound on the decoded list (sum of name.length + value.length + 32 over the block); over it -> HpackError(H2_ENHANCE_YOUR_CALM, message naming the limit) thrown as soon as it is exceeded (do not finish decoding a bomb first). */
  constructor(opts: { maxTableBytes: number; maxHeaderListBytes: number }) {
    this.maxTableBytes = opts.maxTableBytes;
    this.maxHeaderListBytes = opts.maxHeaderListBytes;
    this.tableLimit = opts.maxTableBytes;
    this.capacity = Math.floor(opts.maxTableBytes / HPACK_ENTRY_OVERHEAD) + 1;
    this.names = new Array<string>(this.capacity).fill('');
    this.values = new Array<string>(this.capacity).fill('');
    this.sizes = new Array<number>(this.capacity).fill(0);
  }

  /** Decode one whole header block (HEADERS + CONTINUATION payloads already joined, padding/priority removed). Returns the fields in order as a flat array [name0, value0, name1, value1, ...]. Malformed input -> HpackError(H2_COMPRESSION_ERROR, message saying what was wrong). */
  decode(block: Buffer): string[] {
    // Without an optimising compiler every bytecode costs, so the common cases (an index or a
    // length that fits its prefix, a static or dynamic hit) are written out here rather than
    // called, and what does not change during the block is held in locals.
    const fields: string[] = [];
    const end = block.length;
    const maxListBytes = this.maxHeaderListBytes;
    const names = this.names;
    const values = this.values;
    let listBytes = 0;
    let pos = 0;
    while (pos < end) {
      const first = block[pos]!;
      let name: string;
      let value: string;
      let size: number;
      if (first >= 0x80) {
        // Indexed field (§6.1).
        let index = first & 0x7f;
        if (index === 0x7f) {
          index = this.readInteger(block, pos, 0x7f);
          pos = this.pos;
        } else {
          pos++;
        }
        if (index <= STATIC_COUNT) {
          if (index === 0) throw malformed('indexed header field with index 0');
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
          size = STATIC_SIZES[index]!;
        } else {
          const slot = this.dynamicSlot(index);
          name = names[slot]!;
          value = values[slot]!;
          size = this.sizes[slot]!;
        }
      } else if (first >= 0x20 && first < 0x40) {
        // Dynamic table size update (§6.3): only before the block's first field (§4.2).
        if (fields.length !== 0) throw malformed('dynamic table size update after a header field');
        const limit = this.readInteger(block, pos, 0x1f);
        pos = this.pos;
        if (limit > this.maxTableBytes) {
          throw malformed(`dynamic table size update to ${limit} bytes, above the ${this.maxTableBytes} we allow`);
        }
        this.tableLimit = limit;
        this.evictDownTo(limit);
        continue;
      } else {
        // A literal: with incremental indexing (01xxxxxx, §6.2.1, 6-bit name index), or without
        // indexing (0000xxxx, §6.2.2) or never indexed (0001xxxx, §6.2.3), both 4-bit and the same
        // to a decoder that does not re-encode. Name index 0: the name follows as a string.
        const prefixMask = first >= 0x40 ? 0x3f : 0x0f;
        let nameIndex = first & prefixMask;
        if (nameIndex === prefixMask) {
          nameIndex = this.readInteger(block, pos, prefixMask);
          pos = this.pos;
        } else {
          pos++;
        }
        if (nameIndex === 0) {
          name = this.readString(block, pos);
          pos = this.pos;
        } else {
          name = nameIndex <= STATIC_COUNT ? STATIC_NAMES[nameIndex]! : names[this.dynamicSlot(nameIndex)]!;
        }
        value = this.readString(block, pos);
        pos = this.pos;
        size = name.length + value.length + HPACK_ENTRY_OVERHEAD;
        if (first >= 0x40) {
          // The bound first: a bomb's entry is not worth adding.
          if (listBytes + size > maxListBytes) throw overListLimit(maxListBytes);
          this.insert(name, value, size);
        }
      }
      listBytes += size;
      if (listBytes > maxListBytes) throw overListLimit(maxListBytes);
      fields.push(name, value);
    }
    return fields;
  }

  /** §5.1: the integer whose prefixMask-wide prefix is in the byte at pos, then 7-bit continuation bytes. Leaves this.pos after it. */
  private readInteger(block: Buffer, pos: number, prefixMask: number): number {
    let value = block[pos++]! & prefixMask;
    if (value === prefixMask) {
      // Four continuation bytes carry 28 bits, more than any table, index or string here needs;
      // a fifth is refused rather than letting a value grow without bound.
      let shift = 0;
      let byte: number;
      do {
        if (pos >= block.length) throw malformed('integer runs past the end of the header block');
        if (shift > 21) throw malformed('integer is over 2^28 (more than 4 continuation bytes)');
        byte = block[pos++]!;
        value += (byte & 0x7f) << shift;
        shift += 7;
      } while ((byte & 0x80) !== 0);
    }
    this.pos = pos;
    return value;
  }

  /** §5.2: the string at pos (H bit and 7-bit-prefix length, then that many bytes, Huffman-coded if H). Leaves this.pos after it. */
  private readString(block: Buffer, pos: number): string {
    if (pos >= block.length) throw malformed('header block ends before a string literal');
    const first = block[pos]!;
    let length = first & 0x7f;
    if (length === 0x7f) {
      length = this.readInteger(block, pos, 0x7f);
      pos = this.pos;
    } else {
      pos++;
    }
    const end = pos + length;
    if (end > block.length) throw malformed(`string literal of ${length} bytes runs past the end of the header block`);
    this.pos = end;
    return first >= 0x80 ? decodeHuffman(block, pos, end) : (block as Latin1Buffer).latin1Slice(pos, end);
  }

  /** The ring slot of HPACK index (> 61); 62 is the newest entry. */
  private dynamicSlot(index: number): number {
    const age = index - STATIC_COUNT - 1;
    if (age >= this.count) {
      throw malformed(`index ${index} is past the end of the table (${STATIC_COUNT} static + ${this.count} dynamic entries)`);
    }
    const slot = this.newest - age;
    return slot < 0 ? slot + this.capacity : slot;
  }

  /** §4.4: evict from the oldest end until the entry fits; one larger than the table empties it. */
  private insert(name: string, value: string, size: number): void {
    const limit = this.tableLimit;
    if (this.tableBytes + size > limit) this.evictDownTo(limit - size);
    if (size > limit) return;
    const slot = this.newest + 1 === this.capacity ? 0 : this.newest + 1;
    this.names[slot] = name;
    this.values[slot] = value;
    this.sizes[slot] = size;
    this.newest = slot;
    this.count++;
    this.tableBytes += size;
  }

  /** Evicts oldest entries until the table holds at most maxBytes (all of them if maxBytes < 0). */
  private evictDownTo(maxBytes: number): void {
    const capacity = this.capacity;
    let count = this.count;
    let bytes = this.tableBytes;
    let oldest = this.newest - count + 1;
    if (oldest < 0) oldest += capacity;
    while (count > 0 && bytes > maxBytes) {
      bytes -= this.sizes[oldest]!;
      // Let the strings go now rather than when the slot is reused.
      this.names[oldest] = '';
      this.values[oldest] = '';
      count--;
      oldest = oldest + 1 === capacity ? 0 : oldest + 1;
    }
    this.count = count;
    this.tableBytes = bytes;
  }
}

// ---- Encoder ----

/** Bytes of an integer with a 7-bit prefix (§5.1). */
function integerLength7(value: number): number {
  if (value < 0x7f) return 1;
  let length = 2;
  for (let rest = value - 0x7f; rest >= 0x80; rest >>>= 7) length++;
  return length;
}

/** Writes an integer with a 7-bit prefix (the byte's high bit left 0: no Huffman); returns the new position. */
function writeInteger7(out: Buffer, pos: number, value: number): number {
  if (value < 0x7f) {
    out[pos++] = value;
    return pos;
  }
  out[pos++] = 0x7f;
  let rest = value - 0x7f;
  for (; rest >= 0x80; rest >>>= 7) out[pos++] = (rest & 0x7f) | 0x80;
  out[pos++] = rest;
  return pos;
}

/** A header block of literal fields "without indexing" with a literal (new) name, no Huffman: touches no table on either side. Each pair is [name, value]; names must already be lowercase. Strings are written as latin1 bytes. */
export function encodeLiterals(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  // latin1 is one byte per char (a char above 0xff keeps its low byte), so .length is the byte count.
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const nameLength = field[0].length;
    const valueLength = field[1].length;
    size += 1 + integerLength7(nameLength) + nameLength + integerLength7(valueLength) + valueLength;
  }
  const out = Buffer.allocUnsafe(size) as Latin1Buffer;
  let pos = 0;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    out[pos++] = 0x00; // §6.2.2, name index 0: the name follows as a literal
    pos = writeInteger7(out, pos, field[0].length);
    pos += out.latin1Write(field[0], pos);
    pos = writeInteger7(out, pos, field[1].length);
    pos += out.latin1Write(field[1], pos);
  }
  return out;
}
