// Reads the small files the kernel generates on demand (cgroupfs, procfs) without holding the
// event loop, remembering which files a directory does not have.
//
// A stats listing of 200 containers reads ~1,200 such files every 10 s. These files are
// seq_files: a pread at offset 0 makes the kernel generate the content afresh, so a descriptor
// may be kept between polls and always gives the current values (values are never cached, only
// descriptors and which files do not exist). When the cgroup or device behind a kept descriptor
// is removed, the kernel answers ENODEV; the directory's descriptors are then closed and the files
// opened again, which tells a removed directory (DirectoryGoneError) from a file this kernel does
// not have. A kept descriptor is not free, though (keepDescriptors): once read, each holds its
// seq_file buffer, about 4 KiB of unreclaimable kernel memory, plus about 1 KiB for the open
// file (2,500 memory cgroup files read through kept descriptors: SUnreclaim +10 MiB), and every
// process the daemon spawns closes them all at exec. An open, read and close costs about 14 µs
// against 5 µs for a pread on a kept descriptor (the same 2,500 files, this project's machine).
//
// Opens, reads and closes are done in place, not through the libuv threadpool: each is ~5-20 µs
// of kernel work on a file the kernel makes up when asked (never a disk wait), and a threadpool
// round trip costs more than the call itself (measured on this project's 2-core machine, 1,200
// reads: ~10 ms of CPU read in place, 25-50 ms through the threadpool, whose wake-ups also
// compete for the cores). The threadpool is also where ExecSync's files, the writable-layer walks
// and every record write wait: under kubelet's exec probes (~25 a second at 250 pods) a round trip
// there took 100-400 ms, and a first listing's 600 opens, two at a time, took 35 s (trace of
// critest/kubelet-load.test.ts at 100 pods). So calls are queued and done in slices of at most
// `sliceMs`, yielding to the event loop (setImmediate) between slices: other RPCs and I/O run
// between any two slices, and a listing never holds the loop longer than one slice. Each call is
// one job of a slice, lookups of kept descriptors included (so nothing closes a descriptor
// between its lookup and its read), and a whole cgroup reading, every hierarchy's files, is one
// call (readDirs). Only files of cgroupfs, procfs and sysfs are to be read through this class.
//
// A cgroup or sysfs attribute file is printed whole by one show() call and arrives whole in one
// read. A file that is a list (cgroup.procs, /proc/net/dev: one seq_file record per entry) is
// handed over about a page at a time, so a short read does not mean the end: those are read
// until a read returns nothing (`list: true`).
import { closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** The directory a file was asked from does not exist (the cgroup was removed, or never made). */
export class DirectoryGoneError extends Error {
  constructor(readonly dir: string) {
    super(`${dir} does not exist`);
    this.name = 'DirectoryGoneError';
  }
}

export interface KernelFileReaderOptions {
  /** Remember anything between reads (default true; false: open, read, close each time, and
   * look for a missing file every time). */
  keepOpen?: boolean;
  /** With keepOpen, keep descriptors open between reads too (default true; false: each file is
   * opened, read and closed, and only which files are missing is remembered). */
  keepDescriptors?: boolean;
  /** Longest run of reads before yielding to the event loop (default 1 ms). */
  sliceMs?: number;
  /** Descriptors kept open at most (default 4096); the least recently read directories go first. */
  maxOpen?: number;
  /** A directory not read for this long has its descriptors closed (default 60 s). */
  idleMs?: number;
  /** How long "this file does not exist here" is believed (default 30 s: controllers can be
   * enabled on a cgroup later, which makes their files appear). */
  absentTtlMs?: number;
  /** Monotonic milliseconds (default performance.now); tests pass their own clock. */
  clock?: () => number;
}

/** A kept descriptor. Every lookup and read of a kept descriptor happens inside one job of a
 * slice, so nothing can close it between the two: it is closed as soon as it is forgotten. */
interface OpenFile {
  fd: number;
}

/** A file known not to exist (or to refuse reads) in a directory that does, since `at`. */
interface AbsentFile {
  fd?: undefined;
  at: number;
}

interface DirEntry {
  files: Map<string, OpenFile | AbsentFile>;
  usedAt: number;
}

/** Which file a path leads to (its device and inode). */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** One directory's attribute files, for readDirs. */
export interface DirFiles {
  dir: string;
  names: readonly string[];
}

const BUFFER_SIZE = 64 * 1024;
// Files that exist but refuse reads: a v1 feature compiled out (ENODEV), or not supported here.
const refusesReads = (code: string | undefined) => code === 'ENODEV' || code === 'EOPNOTSUPP' || code === 'EINVAL';

export class KernelFileReader {
  private readonly keepOpen: boolean;
  private readonly keepDescriptors: boolean;
  private readonly sliceMs: number;
  /** Calls waiting for the next slice, in order. */
  private readonly queue: { run: () => unknown; resolve: (value: never) => void; reject: (err: unknown) => void }[] = [];
  private sliceScheduled = false;
  private readonly buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private readonly maxOpen: number;
  private readonly idleMs: number;
  private readonly absentTtlMs: number;
  private readonly clock: () => number;
  /** Kept descriptors per directory, least recently read first. */
  private readonly dirs = new Map<string, DirEntry>();
  private openCount = 0;
  private lastPrune = 0;

  constructor(opts: KernelFileReaderOptions = {}) {
    this.keepOpen = opts.keepOpen ?? true;
    this.keepDescriptors = this.keepOpen && (opts.keepDescriptors ?? true);
    this.sliceMs = opts.sliceMs ?? 1;
    this.maxOpen = Math.max(1, opts.maxOpen ?? 4096);
    this.idleMs = opts.idleMs ?? 60_000;
    this.absentTtlMs = opts.absentTtlMs ?? 30_000;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Descriptors open now (kept, or in use by a read). */
  get openDescriptors(): number {
    return this.openCount;
  }

  /**
   * The current text of `dir`/`name`; undefined when `dir` exists but the file does not (or
   * refuses reads). Throws DirectoryGoneError when `dir` does not exist.
   */
  read(dir: string, name: string, opts?: { list?: boolean }): Promise<string | undefined> {
    const list = opts?.list ?? false;
    return this.inSlice(() => {
      const now = this.startJob();
      if (this.keepOpen) this.touch(dir, now);
      return this.readNow(dir, name, list, now);
    });
  }

  /**
   * The current texts of several directories' attribute files, all read in one job of a slice
   * (one promise for a whole cgroup reading rather than one per file: a refresh of 100 pods reads
   * ~1,800 files, and each promise and closure is garbage the young generation has to collect).
   * Each group gives its files' texts in the order named (undefined: the file is not there or
   * refuses reads), or undefined when its directory does not exist. Any other error rejects all.
   */
  readDirs(groups: readonly DirFiles[]): Promise<((string | undefined)[] | undefined)[]> {
    return this.inSlice(() => {
      const now = this.startJob();
      return groups.map((g) => this.readGroup(g, now));
    });
  }

  /**
   * `dir`/`name` (read to its end with `list`), if the kernel file at `anchor` is `identity`
   * both just before and just after the read, in the same job: /proc/<pid>/net/dev is the pod's
   * table only while process <pid> is in the pod's namespace (a pid can die and be reused, a
   * process can enter another namespace). Undefined when it is not, or when the file or `dir`
   * is not there.
   */
  readIfSame(
    dir: string, name: string, anchor: string, identity: FileIdentity, opts?: { list?: boolean },
  ): Promise<string | undefined> {
    const list = opts?.list ?? false;
    return this.inSlice(() => {
      const now = this.startJob();
      if (!this.isSame(anchor, identity)) return undefined;
      if (this.keepOpen) this.touch(dir, now);
      let text: string | undefined;
      try {
        text = this.readNow(dir, name, list, now);
      } catch (err) {
        if (err instanceof DirectoryGoneError && err.dir === dir) return undefined;
        throw err;
      }
      return text !== undefined && this.isSame(anchor, identity) ? text : undefined;
    });
  }

  /** Close every kept descriptor of `dir` (removed, or not going to be read again). */
  forgetDir(dir: string): void {
    const d = this.dirs.get(dir);
    if (d === undefined) return;
    this.dirs.delete(dir);
    for (const f of d.files.values()) {
      if (f.fd !== undefined) this.closeFd(f.fd);
    }
  }

  /** Close every kept descriptor. */
  close(): void {
    for (const dir of [...this.dirs.keys()]) this.forgetDir(dir);
  }

  private identityNow(path: string): FileIdentity | undefined {
    try {
      const st = statSync(path, { throwIfNoEntry: false });
      return st === undefined ? undefined : { dev: st.dev, ino: st.ino };
    } catch (err) {
      if (errnoCode(err) === 'ESRCH') return undefined;
      throw err;
    }
  }

  private isSame(path: string, identity: FileIdentity): boolean {
    const now = this.identityNow(path);
    return now !== undefined && now.dev === identity.dev && now.ino === identity.ino;
  }

  /** The clock for a job, after closing what has been idle too long. */
  private startJob(): number {
    const now = this.clock();
    this.prune(now);
    return now;
  }

  private readGroup(g: DirFiles, now: number): (string | undefined)[] | undefined {
    if (this.keepOpen) this.touch(g.dir, now);
    try {
      return g.names.map((name) => this.readNow(g.dir, name, false, now));
    } catch (err) {
      if (err instanceof DirectoryGoneError && err.dir === g.dir) return undefined;
      throw err;
    }
  }

  /** The directory's entry, moved to the most recently used end. */
  private touch(dir: string, now: number): DirEntry {
    let d = this.dirs.get(dir);
    if (d === undefined) d = { files: new Map(), usedAt: now };
    else this.dirs.delete(dir);
    d.usedAt = now;
    this.dirs.set(dir, d);
    return d;
  }

  /** `dir`/`name` now, through its kept descriptor if it has one (inside a job of a slice). */
  private readNow(dir: string, name: string, list: boolean, now: number): string | undefined {
    const kept = this.dirs.get(dir)?.files.get(name);
    if (kept !== undefined) {
      if (kept.fd === undefined) {
        if (now - kept.at < this.absentTtlMs) return undefined;
        this.dirs.get(dir)?.files.delete(name); // look again, and keep what is found
      } else {
        try {
          return this.readWhole(kept.fd, list);
        } catch (err) {
          // ENODEV on a kept descriptor: the cgroup (or device) it belongs to was removed.
          if (errnoCode(err) !== 'ENODEV') throw err;
          this.forgetDir(dir);
        }
      }
    }
    return this.openAndRead(dir, name, list, now);
  }

  /** Opens `dir`/`name`, reads it, and keeps the descriptor (keepDescriptors), or what is
   * missing (keepOpen). */
  private openAndRead(dir: string, name: string, list: boolean, now: number): string | undefined {
    const fd = this.openFile(dir, name);
    if (fd === undefined) {
      if (this.keepOpen) this.entry(dir, now).files.set(name, { at: now });
      return undefined;
    }
    let text: string;
    try {
      text = this.readWhole(fd, list);
    } catch (err) {
      this.closeFd(fd);
      if (!refusesReads(errnoCode(err))) throw err;
      if (!this.exists(dir)) throw new DirectoryGoneError(dir);
      if (this.keepOpen) this.entry(dir, now).files.set(name, { at: now });
      return undefined;
    }
    if (this.keepDescriptors) {
      this.entry(dir, now).files.set(name, { fd });
      this.evictOverLimit();
    } else {
      this.closeFd(fd);
    }
    return text;
  }

  /** The directory's entry (made, as the most recently used, if it was forgotten meanwhile). */
  private entry(dir: string, now: number): DirEntry {
    return this.dirs.get(dir) ?? this.touch(dir, now);
  }

  /** Opens `dir`/`name`; undefined when it is not there (in a dir that is) or refuses opening. */
  private openFile(dir: string, name: string): number | undefined {
    try {
      const fd = openSync(`${dir}/${name}`, constants.O_RDONLY);
      this.openCount++;
      return fd;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (!this.exists(dir)) throw new DirectoryGoneError(dir);
        return undefined;
      }
      if (refusesReads(code)) return undefined;
      throw err;
    }
  }

  /** `run` in the next slice. */
  private inSlice<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: never) => void, reject });
      if (!this.sliceScheduled) {
        this.sliceScheduled = true;
        setImmediate(() => this.runSlice());
      }
    });
  }

  /** Runs queued calls for at most sliceMs, then yields to the event loop if any are left. */
  private runSlice(): void {
    const until = performance.now() + this.sliceMs;
    do {
      const job = this.queue.shift();
      if (job === undefined) break;
      try {
        job.resolve(job.run() as never);
      } catch (err) {
        job.reject(err);
      }
    } while (performance.now() < until);
    if (this.queue.length > 0) setImmediate(() => this.runSlice());
    else this.sliceScheduled = false;
  }

  /** One pread for an attribute file of normal size; a list, or a larger file, to its end. */
  private readWhole(fd: number, list: boolean): string {
    const buf = this.buffer;
    let n = readSync(fd, buf, 0, buf.length, 0);
    if (n === 0 || (n < buf.length && !list)) return buf.toString('latin1', 0, n);
    const chunks = [Buffer.from(buf.subarray(0, n))];
    let pos = n;
    while ((n = readSync(fd, buf, 0, buf.length, pos)) > 0) {
      chunks.push(Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    return Buffer.concat(chunks).toString('latin1');
  }

  private exists(dir: string): boolean {
    try {
      return statSync(dir).isDirectory();
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw err;
    }
  }

  private closeFd(fd: number): void {
    this.openCount--;
    try {
      closeSync(fd);
    } catch (err) {
      // Only EBADF could come back, which would mean a bookkeeping bug here: say so.
      throw new Error(`closing kept descriptor ${fd}: ${errnoCode(err) ?? String(err)}`);
    }
  }

  private evictOverLimit(): void {
    for (const dir of this.dirs.keys()) {
      if (this.openCount <= this.maxOpen) return;
      this.forgetDir(dir);
    }
  }

  /** At most every idleMs/4: close the descriptors of directories nobody read lately. */
  private prune(now: number): void {
    if (now - this.lastPrune < this.idleMs / 4) return;
    this.lastPrune = now;
    for (const [dir, d] of this.dirs) {
      if (now - d.usedAt < this.idleMs) return; // the rest were read more recently
      this.forgetDir(dir);
    }
  }
}
