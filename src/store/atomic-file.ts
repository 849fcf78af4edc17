// Crash-safe record files: a reader sees either the old content or the new one, never a torn
// write. Write to a temp file in the same directory (rename is only atomic within a
// filesystem), fsync it, rename over the target, then fsync the directory so the rename itself
// survives a power cut.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DataLossError, errnoCode } from '../errors.js';

/** Temp files start with this so start-up cleanup can find leftovers of an interrupted write. */
export const ATOMIC_TEMP_PREFIX = '.tmp-';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644):
  Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${ATOMIC_TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      // open() applies the umask; the caller asked for this exact mode.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o644): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** The parsed JSON at `path`, or undefined when the file does not exist. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    // ENOTDIR: a parent is a file, so this record cannot exist either.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new DataLossError(`record ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** fsync a directory so entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Whether a directory entry name is an interrupted atomic write's temp file. */
export function isAtomicTemp(name: string): boolean {
  return name.startsWith(ATOMIC_TEMP_PREFIX);
}

/** Ignore errors from removing a file that is already gone. */
export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}
