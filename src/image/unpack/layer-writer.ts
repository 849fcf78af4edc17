// Writes tar entries into a layer directory with full fidelity (owner, mode incl. setuid,
// mtime, xattrs, devices, hardlinks) and turns OCI whiteouts into overlayfs ones.
//
// Every call here is synchronous on purpose: the writer is fed one decompressed chunk at a time
// from a stream, so the event loop is blocked for at most one chunk's worth of entries, while a
// layer of thousands of small files avoids a threadpool round trip per syscall (that is what
// keeps us close to `tar -x`). The layer directory is private to this unpack (a fresh temp dir),
// so the only symlinks in it are ones the archive made; we never follow any of them.
import * as fs from 'node:fs';
import { InvalidArgumentError, ResourceExhaustedError, errnoCode, fsError } from '../../errors.js';
import { umaskKeeps } from '../../process-umask.js';
import { NAME_MAX, PATH_MAX, S_IFBLK, S_IFCHR, S_IFIFO, lsetxattr, mknod } from '../../sys/libc.js';
import { baseOf, cleanEntryPath, parentOf } from './safe-path.js';
import type { TarHeader, TarSink } from './tar-reader.js';

const FILE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL |
  fs.constants.O_NOFOLLOW;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const S_ISGID = 0o2000;

// New files get our effective ids; only when those are 0:0 can a root-owned entry skip its chown.
const IS_ROOT = process.geteuid?.() === 0 && process.getegid?.() === 0;

// What the writer remembers about directories grows with the layer, so it is bounded: the
// known-directory cache is only a cache and starts over past its size; the mtimes still to apply,
// the setgid dirs and the removals are state, and a layer needing more than this of them is
// refused (a real one needs a few MiB even with a million entries of typical path length).
const DIR_CACHE_BYTES = 16 << 20;
const MAX_BOOKKEEPING_BYTES = 64 << 20;
/** Rough per-entry cost of a remembered path beyond its characters (string and map overhead). */
const ENTRY_OVERHEAD = 64;

export interface LayerWriterOptions {
  /** The layer as messages name it. */
  what?: string;
  /** Bound on directory bookkeeping (default 64 MiB); tests lower it. */
  maxBookkeepingBytes?: number;
  /**
   * Where warnings go (entries skipped or kept without an attribute). The writer runs on an
   * unpack thread, which forwards them to the daemon's log rather than load the logger itself.
   */
  warn: LayerWarn;
}

export type LayerWarn = (fields: Record<string, unknown>, msg: string) => void;

export interface LayerWriteStats {
  entries: number;
  /** Bytes of regular-file content written. */
  fileBytes: number;
  whiteouts: number;
}

export class LayerWriter implements TarSink {
  readonly stats: LayerWriteStats = { entries: 0, fileBytes: 0, whiteouts: 0 };
  /** Relative paths known to be real directories (never symlinks) inside the layer: a cache. */
  private readonly dirs = new Set<string>(['']);
  private dirCacheBytes = 0;
  /**
   * Directory mtimes, applied last (writing children would otherwise bump them), each with the
   * sequence number of when it was set; removedAt holds when a directory was last removed, so an
   * mtime set before its directory (or an ancestor) went away is skipped without searching the
   * map at every removal.
   */
  private readonly dirTimes = new Map<string, { mtime: number; seq: number }>();
  private readonly removedAt = new Map<string, number>();
  private seq = 0;
  private bookkeepingBytes = 0;
  private readonly what: string;
  private readonly maxBookkeepingBytes: number;
  private fd = -1;
  private fileHeader: TarHeader | undefined;
  private fileAbs = '';
  private fileOwnedRight = false;
  /** Dirs with the setgid bit: files created in them inherit the dir's group, not ours. */
  private readonly setgidDirs = new Set<string>();
  private warnedXattr = false;
  private readonly warn: LayerWarn;

  constructor(private readonly root: string, opts: LayerWriterOptions) {
    this.what = opts.what ?? 'layer';
    this.warn = opts.warn;
    this.maxBookkeepingBytes = opts.maxBookkeepingBytes ?? MAX_BOOKKEEPING_BYTES;
    if (fs.statSync(root).mode & S_ISGID) this.setgidDirs.add('');
  }

  entry(h: TarHeader): void {
    this.stats.entries += 1;
    const rel = cleanEntryPath(h.name);
    this.checkPathLength(rel, h.name);
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(h, rel, base);
      return;
    }
    if (rel === '') {
      if (h.type !== 'dir') throw new InvalidArgumentError(`layer entry ${JSON.stringify(h.name)} names the layer root but is not a directory`);
      this.applyMeta(this.root, h, true);
      this.noteSetgid('', h);
      this.setDirTime('', h.mtime);
      return;
    }
    this.ensureDirs(parentOf(rel), h.name);
    const abs = this.abs(rel);
    switch (h.type) {
      case 'file':
        this.fd = this.create(rel, () => fs.openSync(abs, FILE_FLAGS, h.mode & 0o777));
        this.fileHeader = h;
        this.fileAbs = abs;
        // A new file is already ours (root:root), unless a setgid parent lent it its group.
        this.fileOwnedRight = IS_ROOT && h.uid === 0 && h.gid === 0 && !this.setgidDirs.has(parentOf(rel));
        return;
      case 'dir':
        this.makeDir(rel, abs);
        this.applyMeta(abs, h, true);
        this.noteSetgid(rel, h);
        this.setDirTime(rel, h.mtime);
        return;
      case 'symlink':
        this.checkLinkTarget(h);
        this.create(rel, () => fs.symlinkSync(h.linkname, abs));
        fs.lchownSync(abs, h.uid, h.gid);
        this.setXattrs(abs, h);
        fs.lutimesSync(abs, h.mtime, h.mtime);
        return;
      case 'link':
        this.hardlink(h, rel, abs);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        this.create(rel, () => mknod(abs, kind | (h.mode & 0o7777), h.devmajor, h.devminor));
        this.applyMeta(abs, h, false);
        fs.lutimesSync(abs, h.mtime, h.mtime);
        return;
      }
      default:
        this.warn({ entry: h.name, typeflag: h.typeflag }, 'skipping layer entry of unsupported tar type');
    }
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return; // body of a skipped entry
    let off = 0;
    try {
      while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
    } catch (err) {
      // A write to an fd names no file: say which one (a full disk is the operator's to fix).
      throw fsError(err, this.fileAbs, 'write');
    }
    this.stats.fileBytes += chunk.length;
  }

  endEntry(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    const h = this.fileHeader!;
    this.fd = -1;
    try {
      // chown clears setuid/setgid and security.capability, so mode and xattrs come after it.
      // The common root-owned, umask-proof file skips both calls: two syscalls of six per file.
      const perm = h.mode & 0o7777;
      if (!this.fileOwnedRight) fs.fchownSync(fd, h.uid, h.gid);
      if (!this.fileOwnedRight || (perm & 0o7000) !== 0 || !umaskKeeps(perm)) fs.fchmodSync(fd, perm);
      this.setXattrs(this.fileAbs, h);
      fs.futimesSync(fd, h.mtime, h.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Apply directory mtimes once all their contents exist. */
  finish(): void {
    for (const [rel, { mtime, seq }] of this.dirTimes) {
      if (!this.removedSince(rel, seq)) fs.utimesSync(this.abs(rel), mtime, mtime);
    }
  }

  /** Whether `rel` or a parent of it was removed after `seq`. */
  private removedSince(rel: string, seq: number): boolean {
    if (this.removedAt.size === 0) return false;
    for (let p = rel; p !== ''; p = parentOf(p)) if ((this.removedAt.get(p) ?? -1) > seq) return true;
    return false;
  }

  /** Count a newly remembered path against the bookkeeping bound. */
  private remember(path: string): void {
    this.bookkeepingBytes += path.length + ENTRY_OVERHEAD;
    if (this.bookkeepingBytes > this.maxBookkeepingBytes) {
      throw new ResourceExhaustedError(
        `${this.what} has more directories than crib keeps track of while unpacking ` +
        `(over ${this.maxBookkeepingBytes >> 20} MiB of directory paths); real layers need a few MiB`);
    }
  }

  private setDirTime(rel: string, mtime: number): void {
    if (!this.dirTimes.has(rel)) this.remember(rel);
    this.dirTimes.set(rel, { mtime, seq: ++this.seq });
  }

  private cacheDir(rel: string): void {
    if (this.dirs.has(rel)) return;
    this.dirCacheBytes += rel.length + ENTRY_OVERHEAD;
    if (this.dirCacheBytes > DIR_CACHE_BYTES) this.forgetDirs();
    this.dirs.add(rel);
  }

  /** Empty the known-directory cache; later entries verify their parents on disk again. */
  private forgetDirs(): void {
    this.dirs.clear();
    this.dirs.add('');
    this.dirCacheBytes = 0;
  }

  /** Release an open file after a failure; the caller discards the directory. */
  abort(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Refuses a path (an entry's, or a hardlink's target) the kernel would not take once under the
   * layer's directory: a name longer than NAME_MAX, or a path of PATH_MAX bytes or more. The
   * archive allows names up to PATH_MAX of their own, and the kernel refused such an entry midway
   * with ENAMETOOLONG: an INTERNAL error naming a host path instead of the entry.
   */
  private checkPathLength(rel: string, entryName: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most paths and names need no count at all.
    const starts = () => JSON.stringify(entryName.slice(0, 80));
    if ((this.root.length + 1 + rel.length) * 3 >= PATH_MAX) {
      const bytes = Buffer.byteLength(this.root) + 1 + Buffer.byteLength(rel);
      if (bytes >= PATH_MAX) {
        throw new InvalidArgumentError(
          `${this.what} has an entry whose path is too long to unpack on this node: ${Buffer.byteLength(rel)} bytes, ` +
          `${bytes} under the layer's directory, where Linux allows at most ${PATH_MAX - 1} (PATH_MAX); the entry starts ${starts()}`);
      }
    }
    if (rel.length * 3 <= NAME_MAX) return;
    for (const part of rel.split('/')) {
      if (part.length * 3 <= NAME_MAX) continue;
      const bytes = Buffer.byteLength(part);
      if (bytes > NAME_MAX) {
        throw new InvalidArgumentError(
          `${this.what} has an entry with a name of ${bytes} bytes in its path, where Linux allows at most ` +
          `${NAME_MAX} (NAME_MAX); the entry starts ${starts()}`);
      }
    }
  }

  /** Refuses a symlink whose target the kernel would not take (PATH_MAX, its NUL included). */
  private checkLinkTarget(h: TarHeader): void {
    if (h.linkname.length * 3 < PATH_MAX) return;
    const bytes = Buffer.byteLength(h.linkname);
    if (bytes < PATH_MAX) return;
    throw new InvalidArgumentError(
      `${this.what} has a symlink whose target is ${bytes} bytes, where Linux allows at most ${PATH_MAX - 1} ` +
      `(PATH_MAX); the symlink is ${JSON.stringify(h.name.slice(0, 80))}`);
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** Run `make`; if the name is taken, remove what is there (a later entry wins) and retry. */
  private create<T>(rel: string, make: () => T): T {
    try {
      return make();
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    this.removeExisting(rel);
    return make();
  }

  private removeExisting(rel: string): void {
    const abs = this.abs(rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    if (st.isDirectory()) {
      fs.rmSync(abs, { recursive: true, force: true });
      // O(1) per removal: scanning the cache and the mtimes for descendants at every removal
      // made a crafted layer quadratic (40k entries took minutes, the event loop blocked).
      this.forgetDirs();
      if (!this.removedAt.has(rel)) this.remember(rel);
      this.removedAt.set(rel, ++this.seq);
    } else {
      fs.unlinkSync(abs);
    }
  }

  private noteSetgid(rel: string, h: TarHeader): void {
    if (h.mode & S_ISGID) {
      if (!this.setgidDirs.has(rel)) this.remember(rel);
      this.setgidDirs.add(rel);
    } else {
      this.setgidDirs.delete(rel);
    }
  }

  private makeDir(rel: string, abs: string): void {
    try {
      fs.mkdirSync(abs, 0o700);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      if (!fs.lstatSync(abs).isDirectory()) {
        this.removeExisting(rel);
        fs.mkdirSync(abs, 0o700);
      }
    }
    this.cacheDir(rel);
  }

  /**
   * Make sure every component of `rel` is a real directory, creating missing ones (tar allows
   * entries whose parents were never listed). A symlink or file on the way is refused.
   */
  private ensureDirs(rel: string, entryName: string): void {
    if (this.dirs.has(rel)) return;
    let cur = '';
    for (const part of rel.split('/')) {
      cur = cur === '' ? part : `${cur}/${part}`;
      if (this.dirs.has(cur)) continue;
      const abs = this.abs(cur);
      try {
        fs.mkdirSync(abs, 0o755);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        const st = fs.lstatSync(abs);
        if (st.isSymbolicLink()) {
          throw new InvalidArgumentError(
            `layer entry ${JSON.stringify(entryName)} goes through the symlink ${JSON.stringify(cur)}; refusing to follow it`);
        }
        if (!st.isDirectory()) {
          throw new InvalidArgumentError(
            `layer entry ${JSON.stringify(entryName)} needs ${JSON.stringify(cur)} to be a directory, but an earlier entry made it a file`);
        }
      }
      this.cacheDir(cur);
    }
  }

  private hardlink(h: TarHeader, rel: string, abs: string): void {
    const target = cleanEntryPath(h.linkname, `hardlink target of ${JSON.stringify(h.name)}:`);
    if (target === '') {
      throw new InvalidArgumentError(`layer hardlink ${JSON.stringify(h.name)} points at the layer root`);
    }
    this.checkPathLength(target, h.name);
    // The target's parents must be real directories too, or a symlink could aim the link outside.
    this.ensureDirs(parentOf(target), h.name);
    const targetAbs = this.abs(target);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(targetAbs);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      throw new InvalidArgumentError(
        `layer hardlink ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which is not an earlier entry of this layer`);
    }
    if (st.isDirectory()) {
      throw new InvalidArgumentError(`layer hardlink ${JSON.stringify(h.name)} points at a directory`);
    }
    if (target === rel) return;
    this.create(rel, () => fs.linkSync(targetAbs, abs));
  }

  private whiteout(h: TarHeader, rel: string, base: string): void {
    const parent = parentOf(rel);
    this.ensureDirs(parent, h.name);
    this.stats.whiteouts += 1;
    if (base === OPAQUE_MARKER) {
      lsetxattr(this.abs(parent), OPAQUE_XATTR, 'y');
      return;
    }
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return; // aufs bookkeeping, no meaning here
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw new InvalidArgumentError(`layer whiteout ${JSON.stringify(h.name)} names no file`);
    }
    const victim = parent === '' ? name : `${parent}/${name}`;
    this.removeExisting(victim);
    // overlayfs reads a 0/0 character device as "deleted in this layer".
    mknod(this.abs(victim), S_IFCHR, 0, 0);
  }

  /** chown, then chmod (chown clears setuid/setgid), then xattrs (chown clears capabilities). */
  private applyMeta(abs: string, h: TarHeader, isDir: boolean): void {
    fs.lchownSync(abs, h.uid, h.gid);
    fs.chmodSync(abs, h.mode & 0o7777);
    this.setXattrs(abs, h, isDir);
  }

  private setXattrs(abs: string, h: TarHeader, isDir = false): void {
    if (h.xattrs.size === 0) return;
    for (const [name, value] of h.xattrs) {
      if (name.startsWith('trusted.overlay.')) {
        // A layer must not forge overlay metadata (redirects, metacopy); opacity is the one
        // attribute with a layer-level meaning.
        if (name === OPAQUE_XATTR && isDir) lsetxattr(abs, name, value);
        else this.warn({ entry: h.name, xattr: name }, 'ignoring overlay xattr carried in a layer');
        continue;
      }
      try {
        lsetxattr(abs, name, value);
      } catch (err) {
        const code = errnoCode(err);
        // Filesystems without xattr support, and user.* on symlinks, cannot hold these: the
        // container still runs, so warn rather than refuse the image.
        if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || (code === 'EPERM' && h.type === 'symlink')) {
          if (!this.warnedXattr) this.warn({ entry: h.name, xattr: name, code }, 'cannot set xattr from layer');
          this.warnedXattr = true;
          continue;
        }
        // The kernel's own bounds, the same on every filesystem: refused by name, not INTERNAL.
        if (code === 'ERANGE' || code === 'E2BIG') {
          throw new InvalidArgumentError(
            `${this.what} has an entry ${JSON.stringify(h.name.slice(0, 80))} with an extended attribute ` +
            `${JSON.stringify(name.slice(0, 80))} that Linux cannot hold: ` +
            (code === 'ERANGE' ? `its name is ${Buffer.byteLength(name)} bytes, over 255` : `its value is ${value.length} bytes, over 64 KiB`));
        }
        throw err;
      }
    }
  }
}
