// The container records: memory is what every read answers from, and the disk follows it. A
// change that must be on disk before anything else happens (an intent, a new record) is written
// at once and fails its caller when the disk refuses; a change that records what already
// happened (an exit, a start) is in memory at once and written in the background, retried with
// backoff while the disk refuses (full, read-only for a while). So a full disk never makes
// ListContainers or ContainerStatus fail, and an exit is never lost while the daemon runs.
// Writes of one record are serialised: a slow write can never land after a newer one.
//
// A removal is recorded by renaming the record's file to <id>.json.removing (one directory
// sync, where rewriting the record with its intent would take two): from then on the record is
// gone from memory, and start-up finds the marker and finishes the removal (load returns the
// record with a remove intent). The marker goes last, once nothing of the container is left.
import { existsSync } from 'node:fs';
import { readdir, rename, unlink } from 'node:fs/promises';
import { errnoCode, fsError } from '../errors.js';
import { log } from '../log.js';
import { nowNs } from '../time.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { changeThenSyncDir, readJson, unlinkIfExists, type AtomicWriteOptions } from '../store/atomic-file.js';
import type { RecordStore } from '../store/record-store.js';
import { decodeDocument } from '../store/schema.js';
import type { ContainerRecord } from './container-record.js';

const REMOVING_SUFFIX = '.removing';
const REMOVING_FILE = /^[0-9a-f]{64}\.json\.removing$/;

export interface ContainerRecordsOptions {
  /** Backoff of background writes the disk refused: first retry after firstMs, doubling to maxMs. */
  retry?: { firstMs: number; maxMs: number };
  /** A record reached the disk (called after every successful write). */
  onSaved?: (rec: ContainerRecord) => void;
}

export class ContainerRecords {
  private readonly byId = new Map<string, ContainerRecord>();
  /** Ids whose record in memory is newer than on disk. */
  private readonly unsaved = new Set<string>();
  private readonly writes = new KeyedLock();
  private readonly retry: { firstMs: number; maxMs: number };
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly store: RecordStore<ContainerRecord>, private readonly opts: ContainerRecordsOptions = {}) {
    this.retry = opts.retry ?? { firstMs: 1000, maxMs: 10_000 };
    this.retryMs = this.retry.firstMs;
  }

  /**
   * Every record: those on disk, and those being removed when the daemon stopped (with a remove
   * intent, and not in memory: reads never see them; `remove` finishes them).
   */
  async load(): Promise<ContainerRecord[]> {
    this.byId.clear();
    for (const rec of await this.store.load()) this.byId.set(rec.id, rec);
    return [...this.list(), ...await this.loadRemoving()];
  }

  private async loadRemoving(): Promise<ContainerRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.store.dir);
    } catch (err) {
      throw fsError(err, this.store.dir, 'list');
    }
    const out: ContainerRecord[] = [];
    for (const name of names.filter((n) => REMOVING_FILE.test(n))) {
      const file = `${this.store.dir}/${name}`;
      const raw = await readJson(file);
      if (raw === undefined) continue;
      const { value } = decodeDocument(this.store.schema, raw, file);
      // A marker next to a live record cannot come from one rename; the marker wins: the
      // removal was answered.
      this.byId.delete(value.id);
      value.intent = { kind: 'remove', at: value.intent?.kind === 'remove' ? value.intent.at : nowNs() };
      out.push(value);
    }
    return out;
  }

  private removingFile(id: string): string {
    return `${this.store.file(id)}${REMOVING_SUFFIX}`;
  }

  /**
   * Records, durably, that the container is being removed and drops it from memory: once this
   * resolves no read sees it, and a crash leaves the marker start-up finishes the removal from.
   * When the disk refuses, nothing changed and the error is thrown.
   *
   * It does not wait for a write of the record in flight (StopContainer's exit, written in the
   * background, is usually still being synced when RemoveContainer arrives: waiting for it cost
   * two more disk flushes). The marker need not hold that exit: a removal needs only the
   * container's dir, pids and handler, which never change after its creation. A write landing
   * after the rename re-creates <id>.json beside the marker and deletes it again (save); a crash
   * between the two leaves both, and the marker wins at start-up. `remove` deletes the record
   * file before the marker.
   */
  async retire(id: string): Promise<ContainerRecord> {
    const cur = this.byId.get(id);
    if (!cur) throw new Error(`container record ${id} vanished`);
    const file = this.store.file(id);
    try {
      await changeThenSyncDir(this.store.dir, () => rename(file, this.removingFile(id)));
    } catch (err) {
      throw fsError(err, file, 'mark removed');
    }
    // Gone from memory: a background write not begun yet finds nothing to write.
    this.byId.delete(id);
    this.unsaved.delete(id);
    return cur;
  }

  get(id: string): ContainerRecord | undefined {
    return this.byId.get(id);
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  /** Ids starting with `prefix` (kubelet and crictl accept unique prefixes). */
  matching(prefix: string): ContainerRecord[] {
    const exact = this.byId.get(prefix);
    if (exact) return [exact];
    return this.list().filter((r) => r.id.startsWith(prefix));
  }

  /** Records whose latest change is not on disk yet. */
  unsavedIds(): string[] {
    return [...this.unsaved];
  }

  /**
   * A new record, on disk before this resolves (a crash after it leaves the intent behind).
   * `opts.onRenamed`: work that may begin once the file is in place (atomic-file.ts).
   */
  async add(rec: ContainerRecord, opts: Pick<AtomicWriteOptions, 'onRenamed'> = {}): Promise<void> {
    await this.writes.run(rec.id, () => this.store.put(rec, opts));
    this.byId.set(rec.id, rec);
  }

  /**
   * Writes a changed record, then changes memory: an intent, or a result the caller must not
   * report before it is on disk. When the disk refuses, nothing changed and the error is thrown.
   * `opts.syncDir` false: an intent (store/atomic-file.ts says when that is enough).
   */
  async commit(id: string, change: (rec: ContainerRecord) => void, opts: AtomicWriteOptions = {}): Promise<ContainerRecord> {
    return this.commitAfter(id, change, Promise.resolve(), opts);
  }

  /**
   * commit, once `after` (work the change must not be on disk before) has resolved: the changed
   * record is written and synced under a temp name meanwhile, so only its rename follows the
   * work. When `after` rejects, nothing changed and its error is thrown; either way this
   * resolves only once `after` has settled. Other writes of the record wait for it.
   * `opts.beforeRename`: runs between the two halves (the crash point there).
   */
  async commitAfter(
    id: string, change: (rec: ContainerRecord) => void, after: Promise<unknown>,
    opts: AtomicWriteOptions & { beforeRename?: () => void } = {},
  ): Promise<ContainerRecord> {
    // Settled below, maybe after a write queued before this one: not an unhandled rejection.
    after.catch(() => undefined);
    return this.writes.run(id, async () => {
      const cur = this.byId.get(id);
      if (!cur) {
        await after.catch(() => undefined);
        throw new Error(`container record ${id} vanished`);
      }
      const next = structuredClone(cur);
      change(next);
      const [file, done] = await Promise.allSettled([this.store.prepare(next, opts), after]);
      if (done.status === 'rejected') {
        if (file.status === 'fulfilled') await file.value.abort();
        throw done.reason;
      }
      if (file.status === 'rejected') throw file.reason;
      opts.beforeRename?.();
      await file.value.commit();
      if (this.byId.get(id) === cur) {
        this.byId.set(id, next);
        this.unsaved.delete(id);
        this.opts.onSaved?.(next);
        return next;
      }
      // Memory moved on while we wrote (an exit arrived): the change goes on top of it, and that
      // newer record is written by the write its own change queued.
      return this.apply(id, change);
    });
  }

  /** Changes a record in memory now; the disk follows (retried until it takes it). */
  updateSoon(id: string, change: (rec: ContainerRecord) => void): ContainerRecord {
    const rec = this.apply(id, change);
    this.save(id).catch((err: unknown) => {
      log.warn({ container: id, err: (err as Error).message }, 'container record not written; keeping it in memory and retrying');
      this.scheduleRetry();
    });
    return rec;
  }

  /** Removes the record, and the marker of a removal in progress (last: see retire). */
  async remove(id: string): Promise<void> {
    this.byId.delete(id);
    this.unsaved.delete(id);
    // After any write in flight: none can begin once the record is out of memory.
    await this.writes.run(id, async () => {
      // The record file first (a write that landed after the marker's rename may have made one
      // again), then the marker. With a marker, no directory sync: a record or marker a power
      // cut brings back only has start-up redo an idempotent removal. Without one (a removal the
      // disk would not mark, a creation rolled back) the record is the live one: synced.
      const marked = existsSync(this.removingFile(id));
      await this.store.remove(id, { syncDir: !marked });
      try {
        await unlink(this.removingFile(id));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw fsError(err, this.removingFile(id), 'remove');
      }
    });
  }

  /** Resolves once the writes of `id` queued so far have ended. */
  async idle(id: string): Promise<void> {
    await this.writes.run(id, async () => undefined);
  }

  /** Stops retrying; one last try writes what is still only in memory (the daemon stops). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all([...this.unsaved].map((id) => this.save(id).catch((err: unknown) =>
      log.warn({ container: id, err: (err as Error).message }, 'container record still not written at shutdown; start-up will read the runtime\'s exit file'))));
  }

  private apply(id: string, change: (rec: ContainerRecord) => void): ContainerRecord {
    const cur = this.byId.get(id);
    if (!cur) throw new Error(`container record ${id} vanished`);
    const next = structuredClone(cur);
    change(next);
    this.byId.set(id, next);
    this.unsaved.add(id);
    return next;
  }

  /** Writes the newest version of a record (it may be newer than the one that asked). */
  private async save(id: string): Promise<void> {
    await this.writes.run(id, async () => {
      const rec = this.byId.get(id);
      if (!rec || !this.unsaved.has(id)) return; // removed, or a queued write already took it
      await this.store.put(rec);
      if (!this.byId.has(id)) {
        // Retired while this write ran: the file it made beside the marker goes (see retire).
        await unlinkIfExists(this.store.file(id));
        return;
      }
      if (this.byId.get(id) === rec) this.unsaved.delete(id);
      this.opts.onSaved?.(rec);
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => void this.retryUnsaved(), this.retryMs);
    this.retryTimer.unref();
  }

  private async retryUnsaved(): Promise<void> {
    this.retryTimer = undefined;
    let failed = 0;
    for (const id of [...this.unsaved]) {
      await this.save(id).catch(() => {
        failed++;
      });
    }
    if (failed === 0) {
      if (this.retryMs > this.retry.firstMs) log.info('container records written again after the disk refused them');
      this.retryMs = this.retry.firstMs;
      return;
    }
    this.retryMs = Math.min(this.retryMs * 2, this.retry.maxMs);
    this.scheduleRetry();
  }
}
