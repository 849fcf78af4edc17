// A push-style tar parser (ustar, GNU long names, PAX incl. binary xattr values).
//
// tar-stream's extract decodes PAX values as UTF-8, which corrupts binary xattrs such as
// security.capability (bytes >= 0x80 become U+FFFD). Layer fidelity needs those bytes, so the
// headers are parsed here and values are kept as raw Buffers. The parser is synchronous: the
// caller feeds it chunks and it calls the sink for every entry, with no per-entry promises.
import { InvalidArgumentError, ResourceExhaustedError } from '../../errors.js';
import { limitExceeded } from '../limits.js';
import { PATH_MAX } from '../../sys/libc.js';

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  /** The raw typeflag character, to name unsupported types in messages. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; PAX may give a fraction. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From SCHILY.xattr.* / LIBARCHIVE.xattr.* PAX records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  entry(header: TarHeader): void;
  data(chunk: Buffer): void;
  endEntry(): void;
}

const BLOCK = 512;
// Fixed bounds of the format, not tunables: Linux refuses longer paths anyway (PATH_MAX), and
// real PAX headers (long names, xattrs such as security.capability or ACLs) are a few KiB.
const MAX_NAME_BYTES = PATH_MAX;
const MAX_META_BYTES = 1 << 20;

export interface TarReaderOptions {
  /** Most entries accepted (image.max_layer_entries); PAX and long-name headers do not count. */
  maxEntries?: number;
  /** The layer as messages name it. */
  what?: string;
}

type State =
  | { kind: 'header' }
  | { kind: 'data'; remaining: number; pad: number }
  | { kind: 'meta'; typeflag: string; remaining: number; pad: number; parts: Buffer[] }
  | { kind: 'end' };

export class TarReader {
  private state: State = { kind: 'header' };
  private pending: Buffer | undefined;
  private zeroBlocks = 0;
  private pax: Map<string, Buffer> | undefined;
  private globalPax = new Map<string, Buffer>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private entryOffset = 0;
  private offset = 0;
  private entries = 0;
  /** PAX bytes waiting for the next entry, and global PAX bytes held: both bounded. */
  private paxBytes = 0;
  private globalPaxBytes = 0;
  private readonly maxEntries: number;
  private readonly what: string;

  constructor(private readonly sink: TarSink, opts: TarReaderOptions = {}) {
    this.maxEntries = opts.maxEntries ?? Number.MAX_SAFE_INTEGER;
    this.what = opts.what ?? 'layer';
  }

  /** Whether the end-of-archive marker has been seen (later bytes are padding). */
  get ended(): boolean {
    return this.state.kind === 'end';
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let pos = 0;
    while (pos < buf.length) {
      const st = this.state;
      if (st.kind === 'end') break;
      if (st.kind === 'header') {
        if (buf.length - pos < BLOCK) {
          this.pending = Buffer.from(buf.subarray(pos));
          break;
        }
        this.entryOffset = this.offset + pos;
        this.header(buf.subarray(pos, pos + BLOCK));
        pos += BLOCK;
        continue;
      }
      if (st.remaining > 0) {
        const n = Math.min(st.remaining, buf.length - pos);
        const piece = buf.subarray(pos, pos + n);
        if (st.kind === 'data') this.sink.data(piece);
        else st.parts.push(Buffer.from(piece));
        st.remaining -= n;
        pos += n;
        continue;
      }
      const skip = Math.min(st.pad, buf.length - pos);
      st.pad -= skip;
      pos += skip;
      if (st.pad === 0) this.finishBody(st);
    }
    this.offset += buf.length - (this.pending?.length ?? 0);
    // A body that ended exactly at the chunk's end still needs its completion.
    const st = this.state;
    if ((st.kind === 'data' || st.kind === 'meta') && st.remaining === 0 && st.pad === 0) this.finishBody(st);
  }

  /** Call at end of input: throws if the archive stopped in the middle of an entry. */
  end(): void {
    const st = this.state;
    if (st.kind === 'end') return;
    if (st.kind === 'header' && !this.pending && !this.pax && this.longName === undefined &&
      this.longLink === undefined) {
      return; // No end-of-archive blocks: tolerated, as GNU tar and Go do.
    }
    throw new InvalidArgumentError(`layer tar is truncated (stopped inside the entry at byte ${this.entryOffset})`);
  }

  private finishBody(st: Extract<State, { kind: 'data' | 'meta' }>): void {
    this.state = { kind: 'header' };
    if (st.kind === 'data') {
      this.sink.endEntry();
      return;
    }
    const body = Buffer.concat(st.parts);
    switch (st.typeflag) {
      case 'x':
        // Several PAX headers may precede one entry; together they stay under the bound.
        this.paxBytes = this.boundedMeta(this.paxBytes + body.length, 'PAX headers for one entry');
        this.pax = new Map([...(this.pax ?? []), ...parsePax(body)]);
        break;
      case 'g':
        this.globalPaxBytes = this.boundedMeta(this.globalPaxBytes + body.length, 'global PAX headers');
        for (const [k, v] of parsePax(body)) this.globalPax.set(k, v);
        break;
      case 'L':
        this.longName = cString(body, 0, body.length);
        break;
      case 'K':
        this.longLink = cString(body, 0, body.length);
        break;
    }
  }

  private checkNameLength(field: string, value: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most names need no count at all.
    if (value.length * 3 <= MAX_NAME_BYTES) return;
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_NAME_BYTES) {
      throw new ResourceExhaustedError(
        `${this.what} has an entry whose ${field} is ${bytes} bytes (at byte ${this.entryOffset}); Linux allows at most ${MAX_NAME_BYTES} (PATH_MAX)`);
    }
  }

  private boundedMeta(total: number, what: string): number {
    if (total > MAX_META_BYTES) {
      throw new ResourceExhaustedError(`${this.what} has ${what} of more than 1 MiB in all (at byte ${this.entryOffset}); real ones are a few KiB`);
    }
    return total;
  }

  private header(block: Buffer): void {
    if (isZero(block)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks >= 2) this.state = { kind: 'end' };
      return;
    }
    if (this.zeroBlocks > 0) {
      // A lone zero block followed by more headers: keep going, as GNU tar --ignore-zeros would.
      this.zeroBlocks = 0;
    }
    if (!checksumOk(block)) {
      throw new InvalidArgumentError(`layer tar has a corrupt header at byte ${this.entryOffset} (bad checksum)`);
    }
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
    const size = parseNumber(block, 124, 12);
    if (size < 0) throw new InvalidArgumentError(`layer tar has a negative size at byte ${this.entryOffset}`);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_BYTES) {
        throw new ResourceExhaustedError(`${this.what} has a tar metadata entry of ${size} bytes at byte ${this.entryOffset} (the bound is 1 MiB)`);
      }
      this.state = { kind: 'meta', typeflag, remaining: size, pad: padding(size), parts: [] };
      if (size === 0) this.finishBody(this.state);
      return;
    }

    let name = cString(block, 0, 100);
    if (isUstar(block)) {
      const prefix = cString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = this.globalPax.size === 0 ? this.pax : new Map([...this.globalPax, ...(this.pax ?? [])]);
    const header: TarHeader = {
      name: this.longName ?? name,
      type: entryType(typeflag),
      typeflag,
      mode: parseNumber(block, 100, 8),
      uid: parseNumber(block, 108, 8),
      gid: parseNumber(block, 116, 8),
      size,
      mtime: parseNumber(block, 136, 12),
      linkname: this.longLink ?? cString(block, 157, 100),
      devmajor: parseNumber(block, 329, 8),
      devminor: parseNumber(block, 337, 8),
      xattrs: new Map(),
    };
    this.pax = undefined;
    this.paxBytes = 0;
    this.longName = undefined;
    this.longLink = undefined;
    if (pax) applyPax(header, pax);
    this.entries += 1;
    if (this.entries > this.maxEntries) {
      throw limitExceeded('maxLayerEntries', this.maxEntries, `${this.what} has more than ${this.maxEntries} entries`);
    }
    this.checkNameLength('name', header.name);
    this.checkNameLength('link target', header.linkname);
    if (header.size < 0 || header.uid < 0 || header.gid < 0) {
      throw new InvalidArgumentError(`layer tar entry ${JSON.stringify(header.name)} has a negative size, uid or gid`);
    }
    // Header-only types carry no body whatever the size field says (Go's archive/tar agrees).
    const bodySize = header.type === 'file' || header.type === 'other' ? header.size : 0;
    this.sink.entry(header);
    this.state = { kind: 'data', remaining: bodySize, pad: padding(bodySize) };
    if (bodySize === 0) this.finishBody(this.state);
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case '0': case '7': return 'file';
    case '1': return 'link';
    case '2': return 'symlink';
    case '3': return 'char';
    case '4': return 'block';
    case '5': return 'dir';
    case '6': return 'fifo';
    default: return 'other';
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 1) if (block[i] !== 0) return false;
  return true;
}

/** "ustar\0" at 257: a POSIX header, whose prefix field extends the name. */
function isUstar(block: Buffer): boolean {
  return block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 &&
    block[261] === 0x72 && block[262] === 0;
}

// The per-header loops are kept tight: measured when the daemon ran without an optimising
// compiler, a branch per byte cost a layer of 3,000 small files a tenth of its unpack time, and
// a layer's first headers are parsed before any compiler has optimised the loop.
function checksumOk(block: Buffer): boolean {
  const want = parseNumber(block, 148, 8);
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 0x20;
  for (let i = 0; i < 148; i += 1) unsigned += block[i]!;
  for (let i = 156; i < BLOCK; i += 1) unsigned += block[i]!;
  if (want === unsigned) return true;
  // Some old tars summed signed chars: every byte over 127 counts 256 less.
  let high = 0;
  for (let i = 0; i < BLOCK; i += 1) if ((i < 148 || i >= 156) && block[i]! > 127) high += 1;
  return want === unsigned - 256 * high;
}

function cString(buf: Buffer, off: number, len: number): string {
  const max = off + len;
  const nul = buf.indexOf(0, off);
  return buf.toString('utf8', off, nul < 0 || nul > max ? max : nul);
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(buf: Buffer, off: number, len: number): number {
  if (buf[off]! & 0x80) {
    // Two's complement base-256; 0xff first means negative (a pre-1970 mtime, say).
    const negative = buf[off] === 0xff;
    let v = negative ? 0 : buf[off]! & 0x7f;
    for (let i = off + 1; i < off + len; i += 1) v = v * 256 + (negative ? buf[i]! ^ 0xff : buf[i]!);
    if (!Number.isSafeInteger(v)) throw new InvalidArgumentError('layer tar has a numeric field beyond 2^53');
    return negative ? -(v + 1) : v;
  }
  let v = 0;
  let seen = false;
  for (let i = off; i < off + len; i += 1) {
    const c = buf[i]!;
    if (c === 0 || (c === 0x20 && seen)) break;
    if (c === 0x20) continue;
    if (c < 0x30 || c > 0x37) throw new InvalidArgumentError(`layer tar header has a bad octal field at header offset ${off}`);
    v = v * 8 + (c - 0x30);
    seen = true;
  }
  return v;
}

/** PAX records "<len> <key>=<value>\n"; values stay raw bytes. */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(body.toString('latin1', pos, sp));
    if (!Number.isInteger(len) || len <= sp - pos || pos + len > body.length) {
      throw new InvalidArgumentError('layer tar has a malformed PAX record');
    }
    const rec = body.subarray(sp + 1, pos + len - 1); // drop the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new InvalidArgumentError('layer tar has a PAX record without "="');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [key, value] of pax) {
    switch (key) {
      case 'path': h.name = value.toString('utf8'); break;
      case 'linkpath': h.linkname = value.toString('utf8'); break;
      case 'size': h.size = paxInt(key, value); break;
      case 'uid': h.uid = paxInt(key, value); break;
      case 'gid': h.gid = paxInt(key, value); break;
      case 'mtime': h.mtime = Number(value.toString('latin1')); break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          h.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
        } else if (key.startsWith('LIBARCHIVE.xattr.')) {
          h.xattrs.set(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)),
            Buffer.from(value.toString('latin1'), 'base64'));
        }
    }
  }
  if (!Number.isFinite(h.mtime)) h.mtime = 0;
}

function paxInt(key: string, value: Buffer): number {
  const n = Number(value.toString('latin1'));
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`layer tar has a bad PAX ${key} value ${JSON.stringify(value.toString('latin1'))}`);
  }
  return n;
}
