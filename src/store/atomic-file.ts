// Crash-safe files, the one writer every persisted record and document goes through: a reader
// sees either the old content or the new one, never a torn write. Write to a temp file in the
// same directory (rename is only atomic within a filesystem), synced as it is written (O_SYNC),
// rename it over the target, then fsync the directory so the rename itself survives a power cut.
//
// Every temp name starts with ATOMIC_TEMP_PREFIX and names its target, so the start-up sweep of
// any persisted directory finds what an interrupted write left (sweepInterruptedWrites), and a
// failure names the file being written, not its temp (the operator's path, their own disk).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DataLossError, errnoCode, fsError } from '../errors.js';
import { umaskKeeps } from '../process-umask.js';

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

// O_SYNC: the write returns once the content and the file's metadata are on disk, as a write and
// an fsync would, one thread-pool round trip fewer. O_EXCL: a fresh file, so the mode given to
// open is its mode, but for what the umask clears.
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_SYNC;

/**
 * The first half of writeFileAtomic: the content written to its temp file and synced, so that
 * the sync's cost overlaps with work the file must only replace its target after (`commit`
 * once that work is done). A crash before the commit leaves the temp file for the start-up
 * sweep and the target untouched.
 *
 * Every awaited file call is a round trip through the thread pool, and on a loaded node each
 * one waits for the event loop too: the directory is opened while the file is written, the
 * file is closed while it is renamed, and the directory's descriptor is closed after the call.
 */
export async function prepareFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, opts: AtomicWriteOptions = {}): Promise<PreparedFile> {
  const dir = dirname(path);
  const tmp = join(dir, `${ATOMIC_TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`);
  const dirOpened = opts.syncDir === false ? undefined : open(dir, 'r');
  // Awaited below on every path; a failure that comes first is not an unhandled one.
  dirOpened?.catch(() => undefined);
  // A read-only descriptor's close has nothing to report: nobody waits for it.
  const closeDir = () => void dirOpened?.then((fh) => fh.close()).catch(() => undefined);
  // The content is on disk once the O_SYNC write returned: the file's close has nothing left to
  // report either, and is awaited only so that no descriptor outlives the call.
  let closed: Promise<unknown> = Promise.resolve();
  let made = false;
  try {
    const fh = await open(tmp, TEMP_FLAGS, mode);
    made = true;
    try {
      // open() applies the umask; the caller asked for this exact mode. Before the write, whose
      // sync takes the mode to disk with the content.
      if (!umaskKeeps(mode)) await fh.chmod(mode);
      // Nothing to write is no write, and so no sync either: an empty file is synced by hand.
      if (data.length === 0) await fh.sync();
      else await fh.writeFile(data);
    } finally {
      closed = fh.close().catch(() => undefined);
    }
    await dirOpened;
  } catch (err) {
    closeDir();
    await closed;
    if (made) await unlink(tmp).catch(() => undefined);
    throw fsError(err, path, 'write');
  }
  return {
    commit: async () => {
      let failedAlongside: { err: unknown } | undefined;
      try {
        const [renamed] = await Promise.allSettled([rename(tmp, path), closed]);
        if (renamed.status === 'rejected') {
          await unlink(tmp).catch(() => undefined);
          throw renamed.reason;
        }
        const [synced, alongside] = await Promise.allSettled([dirOpened?.then((fh) => fh.sync()), opts.onRenamed?.()]);
        if (synced.status === 'rejected') throw synced.reason;
        if (alongside.status === 'rejected') failedAlongside = { err: alongside.reason };
      } catch (err) {
        throw fsError(err, path, 'write');
      } finally {
        closeDir();
      }
      if (failedAlongside) throw failedAlongside.err;
    },
    abort: async () => {
      closeDir();
      await closed;
      await unlink(tmp).catch(() => undefined);
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
  await changeThenSyncDir(dir, async () => undefined);
}

/**
 * Runs `change` (a rename, an unlink: anything that changes the entries of `dir`), then syncs
 * `dir` so that the change outlives a power cut; resolves to what `change` resolved to. Each
 * awaited file call is a round trip through the thread pool: the directory is opened while
 * `change` runs, and closed after the call (a read-only descriptor's close has nothing to report).
 * A failed `change` is thrown as it came and nothing is synced; a failed open or sync is thrown
 * as the file call's own error, for the caller to name.
 *
 * `alongside`, when given, starts once `change` is done and runs while the sync does: work that
 * must come after the change (which every other process, and a kill -9, already sees) but need
 * not wait for the disk. Both are waited for, whatever either does; a failed sync is thrown
 * first, then a failed `alongside`, as it came.
 */
export async function changeThenSyncDir<T>(dir: string, change: () => Promise<T>, alongside?: () => Promise<void>): Promise<T> {
  const dirOpened = open(dir, 'r');
  // Awaited below on every path but a failed change's; a failure then is not an unhandled one.
  dirOpened.catch(() => undefined);
  try {
    const result = await change();
    const synced = dirOpened.then((fh) => fh.sync());
    if (alongside) {
      const [sync, other] = await Promise.allSettled([synced, Promise.resolve().then(alongside)]);
      if (sync.status === 'rejected') throw sync.reason;
      if (other.status === 'rejected') throw other.reason;
    } else {
      await synced;
    }
    return result;
  } finally {
    void dirOpened.then((fh) => fh.close()).catch(() => undefined);
  }
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
