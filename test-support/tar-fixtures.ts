// Build layer tars for tests with tar-stream's pack. pack's PAX encoder only takes strings
// (UTF-8 encoded), while real layers carry binary xattr values such as security.capability; so
// xattrs go in as same-length ASCII placeholders and the raw bytes are patched into the PAX
// bodies afterwards (the header checksum does not cover the body).
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { pack, type Header } from 'tar-stream';

type Headers = Partial<Header> & Pick<Header, 'name'>;

export interface FixtureEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  /** File content. */
  body?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** Symlink or hardlink target. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Written as SCHILY.xattr.<name> PAX records, values as raw bytes. */
  xattrs?: Record<string, Buffer | string>;
}

const TYPES = {
  file: 'file', dir: 'directory', symlink: 'symlink', link: 'link',
  char: 'character-device', block: 'block-device', fifo: 'fifo',
} as const;


/** An uncompressed tar of `entries`, in order. */
export async function buildTar(entries: FixtureEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c) => chunks.push(c as Buffer));
    p.on('end', resolve);
    p.on('error', reject);
  });
  const add = (h: Headers, body?: Buffer): Promise<void> => new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (body) p.entry(h, body, cb);
    else p.entry(h, cb);
  });
  const patches: { key: string; value: Buffer }[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const mtime = e.mtime ?? new Date(1_600_000_000_000);
    let pax: Record<string, string> | undefined;
    if (e.xattrs) {
      pax = {};
      for (const [k, v] of Object.entries(e.xattrs)) {
        const value = typeof v === 'string' ? Buffer.from(v) : v;
        pax[`SCHILY.xattr.${k}`] = 'x'.repeat(value.length);
        patches.push({ key: `SCHILY.xattr.${k}=`, value });
      }
    }
    const body = type === 'file' ? Buffer.from(e.body ?? '') : undefined;
    const h: Headers = {
      name: e.name,
      type: TYPES[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime,
      ...(body ? { size: body.length } : {}),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor } : {}),
      ...(e.devminor !== undefined ? { devminor: e.devminor } : {}),
      ...(pax ? { pax } : {}),
    } as Headers;
    await add(h, body);
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  let cursor = 0;
  for (const { key, value } of patches) {
    const at = tar.indexOf(key, cursor);
    if (at < 0) throw new Error(`fixture: PAX record ${key} not found`);
    value.copy(tar, at + key.length);
    cursor = at + key.length + value.length;
  }
  return tar;
}

export function gzipLayer(tar: Buffer): Buffer {
  return gzipSync(tar);
}

/** zstd-compress with the zstd CLI (Node 20 has no zstd encoder). */
export function zstdLayer(tar: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A vfs_cap_data v2 value granting `capBits` (low 32 bits) permitted+effective. */
export function fileCapability(capBits: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0); // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
  b.writeUInt32LE(capBits >>> 0, 4); // permitted, low word
  b.writeUInt32LE(0, 8); // inheritable, low word
  return b;
}

/** Layers crafted to escape the layer directory; each must be refused. */
export const maliciousLayers: Record<string, FixtureEntry[]> = {
  dotdotEscape: [
    { name: 'ok.txt', body: 'fine' },
    { name: '../escaped.txt', body: 'pwned' },
  ],
  nestedDotdotEscape: [
    { name: 'a/', type: 'dir' },
    { name: 'a/../../escaped.txt', body: 'pwned' },
  ],
  absolutePath: [
    { name: '/tmp/escaped-absolute.txt', body: 'pwned' },
  ],
  symlinkThenWriteThrough: [
    { name: 'evil', type: 'symlink', linkname: '/tmp' },
    { name: 'evil/escaped-through-symlink.txt', body: 'pwned' },
  ],
  relativeSymlinkThenWriteThrough: [
    { name: 'up', type: 'symlink', linkname: '../../..' },
    { name: 'up/escaped-relative.txt', body: 'pwned' },
  ],
  hardlinkOutside: [
    { name: 'passwd-link', type: 'link', linkname: '../../../../etc/passwd' },
  ],
  hardlinkAbsolute: [
    { name: 'passwd-link', type: 'link', linkname: '/etc/passwd' },
  ],
  hardlinkThroughSymlink: [
    { name: 'etcdir', type: 'symlink', linkname: '/etc' },
    { name: 'passwd-link', type: 'link', linkname: 'etcdir/passwd' },
  ],
};
