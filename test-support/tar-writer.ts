// A small POSIX (ustar + pax) tar encoder for building test layers. tar-stream's pack writes pax
// records as UTF-8 text, which corrupts binary extended-attribute values such as
// security.capability; real layers (Go's archive/tar, GNU tar) carry those bytes raw, so this
// encoder writes pax records as bytes. Long paths go into pax "path"/"linkpath" records.

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  path: string;
  type: TarType;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: Date;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as SCHILY.xattr.<name> pax records (values are raw bytes). */
  xattrs?: Record<string, Buffer | string>;
  /** Extra pax records. */
  pax?: Record<string, Buffer | string>;
}

const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> key=value\n" where <len> counts the whole record, its own digits included.
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function pad(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

function headerBlock(h: {
  name: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string;
  linkname: string; uname: string; gname: string; devmajor: number; devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write(octal(h.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(h.uid, 8), 108, 'ascii');
  b.write(octal(h.gid, 8), 116, 'ascii');
  b.write(octal(h.size, 12), 124, 'ascii');
  b.write(octal(h.mtime, 12), 136, 'ascii');
  b.write(h.typeflag, 156, 'ascii');
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  b.write(h.uname, 265, 32, 'utf8');
  b.write(h.gname, 297, 32, 'utf8');
  b.write(octal(h.devmajor, 8), 329, 'ascii');
  b.write(octal(h.devminor, 8), 337, 'ascii');
  b.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return b;
}

/** Encode entries (header + content for files) into a complete tar archive. */
export function encodeTar(entries: { header: TarHeader; content?: Buffer }[]): Buffer {
  const out: Buffer[] = [];
  for (const { header: h, content } of entries) {
    const data = h.type === 'file' ? content ?? Buffer.alloc(0) : Buffer.alloc(0);
    const mtime = Math.floor((h.mtime ?? new Date(0)).getTime() / 1000);
    let name = h.type === 'dir' && !h.path.endsWith('/') ? `${h.path}/` : h.path;
    let linkname = h.linkname ?? '';
    const records: Buffer[] = [];
    if (Buffer.byteLength(name) > 100) {
      records.push(paxRecord('path', Buffer.from(name)));
      name = name.slice(0, 99);
    }
    if (Buffer.byteLength(linkname) > 100) {
      records.push(paxRecord('linkpath', Buffer.from(linkname)));
      linkname = linkname.slice(0, 99);
    }
    for (const [k, v] of Object.entries(h.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
    for (const [k, v] of Object.entries(h.pax ?? {})) records.push(paxRecord(k, Buffer.from(v)));
    const common = {
      mode: h.mode ?? (h.type === 'dir' ? 0o755 : 0o644), uid: h.uid ?? 0, gid: h.gid ?? 0, mtime,
      uname: h.uname ?? '', gname: h.gname ?? '', devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
    };
    if (records.length > 0) {
      const pax = Buffer.concat(records);
      out.push(headerBlock({ ...common, name: `PaxHeaders/${name}`.slice(0, 99), size: pax.length, typeflag: 'x', linkname: '' }), pax, pad(pax.length));
    }
    out.push(headerBlock({ ...common, name, size: data.length, typeflag: TYPEFLAG[h.type], linkname }));
    if (data.length > 0) out.push(data, pad(data.length));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}
