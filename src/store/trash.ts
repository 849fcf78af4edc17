// Where removed directories go to be deleted after the call that removed them has answered.
// Moving a directory here is one rename within the filesystem (atomic, and its mounts move with
// it): from then on it is out of sight at its old path, a new object with the same name can take
// that path at once, and its recursive deletion (unmounts, many unlinks) is off the call path.
//
// Everything in a trash directory is garbage by construction, so start-up deletes all of it
// (sweep): a crash, a kill -9 or a power cut anywhere leaves at worst entries the next start
// deletes, never a half-deleted object at a live path. Each entry is named <name>-<random>, so
// a second removal of the same name (an id re-used after a failed deletion) never collides.
//
// Background deletions are bounded: past `maxPending` the caller deletes its own entry before
// answering (slower, never an unbounded queue of work or of disk held by the dead).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode, fsError } from '../errors.js';
import { log } from '../log.js';
import { removeTree } from '../sys/remove-tree.js';
import { fsyncDir } from './atomic-file.js';

export interface TrashOptions {
  /** Deletions running in the background at most; more are done before the caller answers. */
  maxPending?: number;
  /**
   * Runs on an entry before its recursive delete: what must not be deleted through (a mount
   * inside it is unmounted, never walked into). Idempotent: a sweep runs it again after a crash.
   */
  release?: (entry: string) => Promise<void>;
  /**
   * Sync the removed directory's parent after the move, so that a power cut never brings the
   * directory back half-deleted at its old path: for a dir on a persistent disk whose owner's
   * record may be gone first. Not needed when start-up sweeps that parent itself.
   */
  syncParent?: boolean;
  /**
   * Entries are trees of unbounded size, which a container or an image made (writable layers,
   * unpacked layers): each is deleted by sys/remove-tree.ts's removeTree, a process of its own.
   * Otherwise by fs.rm in the daemon, for dirs of a few files the daemon made itself (a removed
   * pod's or container's), where a process per entry costs more than the walk: in bench:ops,
   * RemovePodSandbox's median was 2.8 ms with a process for every entry of every trash, 2.2 ms
   * with one for the layers' only, 1.8-1.9 ms with none.
   */
  unboundedTrees?: boolean;
}

/** Default bound on background deletions (a burst of removals beyond it is deleted inline). */
export const TRASH_MAX_PENDING = 32;

export class Trash {
  private readonly pending = new Map<string, Promise<void>>();
  private readonly maxPending: number;

  constructor(readonly dir: string, private readonly opts: TrashOptions = {}) {
    this.maxPending = opts.maxPending ?? TRASH_MAX_PENDING;
  }

  /** Deletions still running in the background. */
  get inProgress(): number {
    return this.pending.size;
  }

  /**
   * Moves `path` into the trash and deletes it, in the background while fewer than maxPending
   * deletions run, else before resolving. Resolves once `path` is gone from where it was (a
   * missing path is fine). A failed background deletion is logged; the entry stays for the next
   * start-up's sweep.
   */
  async discard(path: string): Promise<void> {
    const entry = await this.moveIn(path);
    if (!entry) return;
    if (this.pending.size >= this.maxPending) {
      await this.delete(entry);
      return;
    }
    // Begun in the next turn of the event loop, so that the caller's answer is on its way before
    // any of it (a release's unmounts are synchronous calls) runs.
    const done = new Promise((resolve) => setImmediate(resolve)).then(() => this.delete(entry)).catch((err: unknown) => {
      log.error({ path: entry, err }, 'deleting a removed directory failed; the next start-up deletes it');
    }).finally(() => this.pending.delete(entry));
    this.pending.set(entry, done);
  }

  /** Resolves once every background deletion begun so far has ended (done or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.pending.values()]);
  }

  /** Deletes every entry (start-up: before anything is moved in). Returns how many. */
  async sweep(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 0;
      throw fsError(err, this.dir, 'list');
    }
    for (const name of names) await this.delete(join(this.dir, name));
    return names.length;
  }

  private async moveIn(path: string): Promise<string | undefined> {
    const entry = join(this.dir, `${basename(path)}-${randomBytes(6).toString('hex')}`);
    // The rename first: the trash dir is there but for the first removal (or after a start-up
    // sweep of its parent deleted it), and making it every time cost each removal a call.
    if (!(await this.rename(path, entry))) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        throw fsError(err, this.dir, 'create directory');
      });
      if (!(await this.rename(path, entry))) return undefined;
    }
    if (this.opts.syncParent) {
      await fsyncDir(dirname(path)).catch((err: unknown) => {
        throw fsError(err, dirname(path), 'sync');
      });
    }
    return entry;
  }

  /** false when `from` or the trash dir is missing (ENOENT). */
  private async rename(from: string, to: string): Promise<boolean> {
    try {
      await rename(from, to);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw fsError(err, from, 'move to the trash');
    }
  }

  private async delete(entry: string): Promise<void> {
    await this.opts.release?.(entry);
    if (this.opts.unboundedTrees) {
      await removeTree(entry);
    } else {
      await rm(entry, { recursive: true, force: true }).catch((err: unknown) => {
        throw fsError(err, entry, 'remove');
      });
    }
  }
}
