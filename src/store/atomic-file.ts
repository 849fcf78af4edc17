// Crash-safe files, the one writer every persisted record and document goes through: a reader
// sees either the old content or the new one, never a torn write. Write to a temp file in the
// same directory (rename is only atomic within a filesystem) and sync it, rename it over the
// target, then fsync the directory so the rename itself survives a power cut.
//
// The steps are the native helpers' own writer's (native/common/atomic-file.c, through the
// addon), so every temp name, the daemon's and the helpers', is ".tmp-<target>-<12 hex>":
// ATOMIC_TEMP_PREFIX and the target's name, and the start-up sweep of any persisted directory
// finds what an interrupted write left (sweepInterruptedWrites). A failure names the file being
// written, not its temp (the operator's path, their own disk).
import { mkdir, readFile, readdir, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DataLossError, errnoCode, fsError } from '../errors.js';
import { atomicCommit, atomicPrepare, syncDirectory } from '../sys/libc.js';

/** Temp files start with this so start-up cleanup can find leftovers of an interrupted write. */
export const ATOMIC_TEMP_PREFIX = '.tmp-';

/**
 * Temp names of the network's own writer before it was folded into this one
 * (".ipam.json.<12 hex>.tmp"): a node upgraded after a crash mid-write still has them.
 */
const LEGACY_TEMP_RE = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;

export interface AtomicWriteOptions {
  /**
   * false: skip the directory's fsync. The content is still synced before the rename, and the
   * rename is atomic, so any crash, a power cut included, leaves the old file or the new one,
   * never a torn one; only whether the rename outlives a power cut waits for the directory's
   * next sync (the next durable write or removal in it). For intents whose loss in a power cut
   * loses nothing: what they announce is undone by the reboot itself, or a later durable write
   * in the same directory records the outcome before the caller is answered. Default true.
   */
  syncDir?: boolean;
  /**
   * Called once the file is in place, before its directory is synced: a process reading the
   * directory from now on (the daemon restarted after a kill -9) finds it. Only for work that
   * must follow the file for a crash but that a power cut cannot outlive without it either
   * (under /run, a tmpfs): it overlaps the directory's sync. Not called when the rename fails.
   * A promise it returns is waited for with the sync: the commit resolves once both are done,
   * and rejects with the sync's error first, then with the promise's, as it came.
   */
  onRenamed?: () => void | Promise<void>;
}

/** A file written and synced under a temp name beside its target, not in place yet. */
export interface PreparedFile {
  /** Renames it over the target (then syncs the directory, unless `syncDir` was false). */
  commit(): Promise<void>;
  /** Removes the temp file: the target is left as it was. */
  abort(): Promise<void>;
}

/**
 * The first half of writeFileAtomic: the content written to its temp file and synced, so that
 * the sync's cost overlaps with work the file must only replace its target after (`commit`
 * once that work is done). A crash before the commit leaves the temp file for the start-up
 * sweep and the target untouched.
 *
 * Both halves are the native helpers' own writer (native/common/atomic-file.c, through
 * sys/libc.ts), each one trip through the thread pool, which on a loaded node waits for the event
 * loop too: node:fs took four in a row (open, write, rename, the directory's sync), and its file
 * handles cost the event loop a quarter of a millisecond a write.
 */
export async function prepareFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, opts: AtomicWriteOptions = {}): Promise<PreparedFile> {
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw new TypeError(`write ${path}: the content must be a string or a Uint8Array, not ${typeof data}`);
  }
  let tmp: string;
  try {
    tmp = await atomicPrepare(path, typeof data === 'string' ? Buffer.from(data) : data, mode);
  } catch (err) {
    throw fsError(err, path, 'write');
  }
  const syncDir = opts.syncDir !== false;
  return {
    commit: async () => {
      const { onRenamed } = opts;
      try {
        // Without work to overlap, the rename and the directory's sync are one trip.
        await atomicCommit(path, tmp, syncDir && !onRenamed);
      } catch (err) {
        throw fsError(err, path, 'write');
      }
      if (onRenamed) await syncDirBeside(syncDir ? dirname(path) : null, onRenamed, (err) => fsError(err, path, 'write'));
    },
    abort: async () => {
      await unlink(join(dirname(path), tmp)).catch(() => undefined);
    },
  };
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, opts: AtomicWriteOptions = {}): Promise<void> {
  await (await prepareFileAtomic(path, data, mode, opts)).commit();
}

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o644, opts: AtomicWriteOptions = {}): Promise<void> {
  await (await prepareJsonAtomic(path, value, mode, opts)).commit();
}

/** prepareFileAtomic of a JSON document, written as writeJsonAtomic writes it. */
export async function prepareJsonAtomic(path: string, value: unknown, mode = 0o644, opts: AtomicWriteOptions = {}): Promise<PreparedFile> {
  return prepareFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode, opts);
}

/** writeJsonAtomic, making the file's directory (private to the daemon) when it is missing. */
export async function writeJsonAtomicMkdir(path: string, value: unknown, mode = 0o600, opts: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw fsError(err, dirname(path), 'create directory');
  });
  await writeJsonAtomic(path, value, mode, opts);
}

/** The parsed JSON at `path`, or undefined when the file does not exist. */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    // ENOTDIR: a parent is a file, so this record cannot exist either.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw fsError(err, path, 'read');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DataLossError(`record ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** fsync a directory so entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  await syncDirectory(dir);
}

/**
 * Runs `change` (a rename, an unlink: anything that changes the entries of `dir`), then syncs
 * `dir` so that the change outlives a power cut; resolves to what `change` resolved to. The
 * sync (the directory opened, synced and closed) is one trip through the thread pool. A failed
 * `change` is thrown as it came and nothing is synced; a failed open or sync is thrown as the
 * file call's own error, for the caller to name.
 *
 * `alongside`, when given, starts once `change` is done and runs while the sync does: work that
 * must come after the change (which every other process, and a kill -9, already sees) but need
 * not wait for the disk. Both are waited for, whatever either does; a failed sync is thrown
 * first, then a failed `alongside`, as it came.
 */
export async function changeThenSyncDir<T>(dir: string, change: () => Promise<T>, alongside?: () => Promise<void>): Promise<T> {
  const result = await change();
  await syncDirBeside(dir, alongside);
  return result;
}

/**
 * Syncs `dir` (none when null) while `alongside` (begun now, after the sync) runs, and waits for
 * both: a failed sync is thrown first (as `syncFailed` makes it), then a failed `alongside`, as
 * it came, a synchronous throw included.
 */
async function syncDirBeside(dir: string | null, alongside?: () => void | Promise<void>,
  syncFailed: (err: unknown) => unknown = (err) => err): Promise<void> {
  const synced = dir === null ? undefined : syncDirectory(dir);
  let other: void | Promise<void>;
  try {
    other = alongside?.();
  } catch (err) {
    other = Promise.reject(err);
  }
  const [sync, done] = await Promise.allSettled([synced, other]);
  if (sync.status === 'rejected') throw syncFailed(sync.reason);
  if (done.status === 'rejected') throw done.reason;
}

/** Whether a directory entry name is an interrupted atomic write's temp file. */
function isAtomicTemp(name: string): boolean {
  return name.startsWith(ATOMIC_TEMP_PREFIX);
}

/**
 * Whether `name` is what an interrupted write left in a persisted directory: this writer's temp
 * file (of `target` only, when given) or the former network writer's.
 */
export function isInterruptedWrite(name: string, target?: string): boolean {
  if (target === undefined) return isAtomicTemp(name) || LEGACY_TEMP_RE.test(name);
  return name.startsWith(`${ATOMIC_TEMP_PREFIX}${target}-`) || LEGACY_TEMP_RE.exec(name)?.[1] === target;
}

/**
 * Remove what interrupted writes left in `dir` (those of `target` only, when given); returns how
 * many. A missing dir has none. Call it at start-up, before anything writes there: a temp file
 * is only ever left by a write that did not finish, and a write in flight would lose its temp.
 */
export async function sweepInterruptedWrites(dir: string, target?: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0;
    throw fsError(err, dir, 'list');
  }
  let removed = 0;
  for (const name of names) {
    if (!isInterruptedWrite(name, target)) continue;
    await rm(join(dir, name), { recursive: true, force: true }).catch((err: unknown) => {
      throw fsError(err, join(dir, name), 'remove');
    });
    removed += 1;
  }
  return removed;
}

/** Remove a file, fine when it is already gone: whether it was there. */
export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, path, 'remove');
    return false;
  }
}
