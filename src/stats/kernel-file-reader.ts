// Reads the small files the kernel generates on demand (cgroupfs, procfs, sysfs) without holding
// the event loop, remembering which files a directory does not have.
//
// A stats listing of 200 containers reads ~1,200 such files every 10 s. Each file is opened, read
// and closed within one call, and no descriptor outlives it. These files are seq_files, whose
// content the kernel generates afresh at each pread from offset 0, so a descriptor kept between
// readings would give current values too, but it is not free: once read, each holds its seq_file
// buffer, about 4 KiB of unreclaimable kernel memory, plus about 1 KiB for the open file (2,500
// memory cgroup files read through kept descriptors: SUnreclaim +10 MiB), and every process the
// daemon spawns (an ExecSync probe's monitor among them) closes them all at exec. What keeping
// them saves is small: an open, read and close costs about 14 µs against 5 µs for a pread on a
// kept descriptor (the same 2,500 files, this project's machine), and listings were no faster
// with them. Measured without them against with: bench:stats (200 containers, a listing every
// 2.1 s, no probes) ListContainerStats p50 5.8 against 6.3 ms, ListPodSandboxStats p50 8.9
// against 9.0, daemon CPU 150 against 136 ms a second (the reopening, at 2.4 times kubelet's
// rate); bench:kubelet at 250 pods, one run each: daemon and helpers' CPU 35.8 against 41.2 s a
// minute, ExecSync p50/p99 22.9 / 62.9 against 26.7 / 75.5 ms.
//
// What is remembered (rememberAbsent) is which files a directory lacks or that refuse reads (a
// controller not enabled on the cgroup, a v1 feature compiled out): each would otherwise cost a
// failed open and a stat of its directory at every reading. It is believed for absentTtlMs only,
// since enabling a controller later makes its files appear, and only for the maxDirs directories
// read most recently, each forgotten once not read for idleMs: the directories come from the
// containers kubelet asks about, so what is remembered must not grow with them. A directory found
// removed has its absences forgotten with it (its name may be made again for another cgroup).
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
// one job of a slice, and a whole cgroup reading, every hierarchy's files, is one call
// (readDirs). Only files of cgroupfs, procfs and sysfs are to be read through this class.
//
// A cgroup or sysfs attribute file is printed whole by one show() call and arrives whole in one
// read. A file that is a list (cgroup.procs, /proc/net/dev: one seq_file record per entry) is
// handed over about a page at a time, so a short read does not mean the end: those are read
// until a read returns nothing (`list: true`).
import { closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/**
 * How a file that is a list is read: `list`, to its end (a short read is not its end); and with
 * `maxBytes`, no further than that: the records after it are left unread, and the last one may
 * be cut short (the caller parses whole lines only). For a list whose length someone else
 * decides, such as the interface table of a pod's own network namespace.
 */
export interface ListOptions {
  list?: boolean;
  maxBytes?: number;
}

/** `opts` as readWhole's `list`: 0 for no list, else the most bytes to read. */
const listBytes = (opts: ListOptions | undefined): number => (opts?.list ? Math.max(1, opts.maxBytes ?? Infinity) : 0);

/** The directory a file was asked from does not exist (the cgroup was removed, or never made). */
export class DirectoryGoneError extends Error {
  constructor(readonly dir: string) {
    super(`${dir} does not exist`);
    this.name = 'DirectoryGoneError';
  }
}

export interface KernelFileReaderOptions {
  /** Remember which files each directory lacks or that refuse reads (default true; false: look
   * for every file at every read, for directories whose name may later mean another one, such
   * as /proc/<pid>). */
  rememberAbsent?: boolean;
  /** Longest run of reads before yielding to the event loop (default 1 ms). */
  sliceMs?: number;
  /** Directories whose absences are remembered at most (default 4096); the least recently read
   * are forgotten first. */
  maxDirs?: number;
  /** A directory not read for this long has its absences forgotten (default 60 s). */
  idleMs?: number;
  /** How long "this file does not exist here" is believed (default 30 s: controllers can be
   * enabled on a cgroup later, which makes their files appear). */
  absentTtlMs?: number;
  /** Monotonic milliseconds (default performance.now); tests pass their own clock. */
  clock?: () => number;
}

/** The files a directory (one that exists) was found not to have, or to refuse reads, by name:
 * since when. */
interface DirEntry {
  absent: Map<string, number>;
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
  private readonly rememberAbsent: boolean;
  private readonly sliceMs: number;
  /** Calls waiting for the next slice, in order. */
  private readonly queue: { run: () => unknown; resolve: (value: never) => void; reject: (err: unknown) => void }[] = [];
  private sliceScheduled = false;
  private readonly buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private readonly maxDirs: number;
  private readonly idleMs: number;
  private readonly absentTtlMs: number;
  private readonly clock: () => number;
  /** Directories with files remembered absent, least recently read first. */
  private readonly dirs = new Map<string, DirEntry>();
  private lastPrune = 0;

  constructor(opts: KernelFileReaderOptions = {}) {
    this.rememberAbsent = opts.rememberAbsent ?? true;
    this.sliceMs = opts.sliceMs ?? 1;
    this.maxDirs = Math.max(1, opts.maxDirs ?? 4096);
    this.idleMs = opts.idleMs ?? 60_000;
    this.absentTtlMs = opts.absentTtlMs ?? 30_000;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /**
   * The current text of `dir`/`name`; undefined when `dir` exists but the file does not (or
   * refuses reads). Throws DirectoryGoneError when `dir` does not exist.
   */
  read(dir: string, name: string, opts?: ListOptions): Promise<string | undefined> {
    const list = listBytes(opts);
    return this.inSlice(() => {
      const now = this.startJob();
      this.touch(dir, now);
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
   * is not there. No absence is remembered or believed here: the path names whatever process
   * has the pid now, so what one lacked says nothing of the next.
   */
  readIfSame(
    dir: string, name: string, anchor: string, identity: FileIdentity, opts?: ListOptions,
  ): Promise<string | undefined> {
    const list = listBytes(opts);
    return this.inSlice(() => {
      this.startJob();
      if (!this.isSame(anchor, identity)) return undefined;
      let text: string | undefined;
      try {
        text = this.openAndRead(dir, name, list);
      } catch (err) {
        if (err instanceof DirectoryGoneError && err.dir === dir) return undefined;
        throw err;
      }
      return text !== undefined && this.isSame(anchor, identity) ? text : undefined;
    });
  }

  /** Forget every remembered absence. */
  close(): void {
    this.dirs.clear();
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

  /** The clock for a job, after forgetting what has been idle too long. */
  private startJob(): number {
    const now = this.clock();
    this.prune(now);
    return now;
  }

  private readGroup(g: DirFiles, now: number): (string | undefined)[] | undefined {
    this.touch(g.dir, now);
    try {
      return g.names.map((name) => this.readNow(g.dir, name, 0, now));
    } catch (err) {
      if (err instanceof DirectoryGoneError && err.dir === g.dir) return undefined;
      throw err;
    }
  }

  /** Marks the directory's entry, if it has one, as the most recently read. */
  private touch(dir: string, now: number): void {
    const d = this.dirs.get(dir);
    if (d === undefined) return;
    this.dirs.delete(dir);
    d.usedAt = now;
    this.dirs.set(dir, d);
  }

  /** `dir`/`name` now, unless it was found absent less than absentTtlMs ago (inside a job of a
   * slice). */
  private readNow(dir: string, name: string, list: number, now: number): string | undefined {
    if (!this.rememberAbsent) return this.openAndRead(dir, name, list);
    const d = this.dirs.get(dir);
    const since = d?.absent.get(name);
    if (since !== undefined && now - since < this.absentTtlMs) return undefined;
    let text: string | undefined;
    try {
      text = this.openAndRead(dir, name, list);
    } catch (err) {
      if (err instanceof DirectoryGoneError) this.dirs.delete(dir);
      throw err;
    }
    if (text === undefined) {
      this.markAbsent(dir, name, now);
    } else if (d !== undefined && since !== undefined) {
      d.absent.delete(name);
      if (d.absent.size === 0) this.dirs.delete(dir);
    }
    return text;
  }

  private markAbsent(dir: string, name: string, now: number): void {
    let d = this.dirs.get(dir);
    if (d === undefined) {
      d = { absent: new Map(), usedAt: now };
      this.dirs.set(dir, d);
      // The entry just made is the most recent: with maxDirs at least 1, never the one dropped.
      if (this.dirs.size > this.maxDirs) this.dirs.delete(this.dirs.keys().next().value!);
    }
    d.absent.set(name, now);
  }

  /** Opens `dir`/`name`, reads it and closes it; undefined when it is not there (in a dir that
   * is) or refuses opening or reading. */
  private openAndRead(dir: string, name: string, list: number): string | undefined {
    const fd = this.openFile(dir, name);
    if (fd === undefined) return undefined;
    try {
      return this.readWhole(fd, list);
    } catch (err) {
      if (!refusesReads(errnoCode(err))) throw err;
      // ENODEV too when the cgroup (or device) was removed between the open and the read.
      if (!this.exists(dir)) throw new DirectoryGoneError(dir);
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  /** Opens `dir`/`name`; undefined when it is not there (in a dir that is) or refuses opening. */
  private openFile(dir: string, name: string): number | undefined {
    try {
      return openSync(`${dir}/${name}`, constants.O_RDONLY);
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

  /**
   * One pread for an attribute file of normal size; a larger file to its end; a list (`list`
   * above 0) to its end or to `list` bytes, whichever comes first.
   */
  private readWhole(fd: number, list: number): string {
    const buf = this.buffer;
    const limit = list > 0 ? list : Infinity;
    let n = readSync(fd, buf, 0, Math.min(buf.length, limit), 0);
    if (n === 0 || (n < buf.length && list === 0)) return buf.toString('latin1', 0, n);
    const chunks = [Buffer.from(buf.subarray(0, n))];
    let pos = n;
    while (pos < limit && (n = readSync(fd, buf, 0, Math.min(buf.length, limit - pos), pos)) > 0) {
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

  /** At most every idleMs/4: forget the absences of directories nobody read lately. */
  private prune(now: number): void {
    if (now - this.lastPrune < this.idleMs / 4) return;
    this.lastPrune = now;
    for (const [dir, d] of this.dirs) {
      if (now - d.usedAt < this.idleMs) return; // the rest were read more recently
      this.dirs.delete(dir);
    }
  }
}
