// A directory of JSON records, one file per id, each written atomically (atomic-file.ts) and
// versioned (schema.ts). The in-memory map is the read path; disk is written before a change
// is acknowledged. Containers, pods and images are kept this way.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, fsError } from '../errors.js';
import { changeThenSyncDir, prepareJsonAtomic, readJson, sweepInterruptedWrites, unlinkIfExists, type AtomicWriteOptions } from './atomic-file.js';
import { decodeDocument, encodeDocument, type Schema } from './schema.js';

/** Record files: a 64-hex name (an id, or the hex of a digest id). Anything else is not ours. */
const RECORD_FILE = /^[0-9a-f]{64}\.json$/;

export interface RecordStoreOptions {
  /** The file name, without ".json", of the record with this id (default: the id itself). */
  fileStem?: (id: string) => string;
}

export interface RecordRemoveOptions extends AtomicWriteOptions {
  /**
   * Runs once the record's file is gone, while its directory syncs (changeThenSyncDir): what
   * must follow the record's removal but need not wait for the disk, such as moving the
   * object's own files away. Its failure fails the removal, as it came.
   */
  alongsideSync?: () => Promise<void>;
}

export class RecordStore<T extends { id: string }> {
  private readonly records = new Map<string, T>();
  private readonly fileStem: (id: string) => string;

  constructor(readonly dir: string, readonly schema: Schema<T>, opts: RecordStoreOptions = {}) {
    this.fileStem = opts.fileStem ?? ((id) => id);
  }

  /** Read every record (migrated to the current schema) and drop interrupted writes' temp files. */
  async load(): Promise<T[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw fsError(err, this.dir, 'create directory');
    });
    this.records.clear();
    await sweepInterruptedWrites(this.dir);
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw fsError(err, this.dir, 'list');
    }
    for (const name of names) {
      if (!RECORD_FILE.test(name)) continue;
      const file = join(this.dir, name);
      const raw = await readJson(file);
      if (raw === undefined) continue;
      const { value } = decodeDocument(this.schema, raw, file);
      this.records.set(value.id, value);
    }
    return this.list();
  }

  get(id: string): T | undefined {
    return this.records.get(id);
  }

  list(): T[] {
    return [...this.records.values()];
  }

  /** The file record `id` lives in. */
  file(id: string): string {
    return join(this.dir, `${this.fileStem(id)}.json`);
  }

  /** Writes the record; `opts.syncDir` false: an intent (atomic-file.ts says when that is enough). */
  async put(rec: T, opts: AtomicWriteOptions = {}): Promise<T> {
    return (await this.prepare(rec, opts)).commit();
  }

  /**
   * put in two halves (atomic-file.ts's prepareFileAtomic): the record written and synced under
   * a temp name now; in place, and in memory, once `commit` resolves.
   */
  async prepare(rec: T, opts: AtomicWriteOptions = {}): Promise<{ commit(): Promise<T>; abort(): Promise<void> }> {
    const file = await prepareJsonAtomic(this.file(rec.id), encodeDocument(this.schema, rec), 0o600, opts);
    return {
      commit: async () => {
        await file.commit();
        this.records.set(rec.id, rec);
        return rec;
      },
      abort: () => file.abort(),
    };
  }

  /** Apply `change` to a copy of the record and persist it. */
  async update(id: string, change: (rec: T) => void, opts: AtomicWriteOptions = {}): Promise<T> {
    const cur = this.records.get(id);
    if (!cur) throw new NotFoundError(`${this.schema.kind} ${id} no longer exists`);
    const next = structuredClone(cur);
    change(next);
    return this.put(next, opts);
  }

  /**
   * Replace the in-memory copy without writing: for a correction load()'s caller derives from
   * other records (it is derived again on every load, and persisted by the next put).
   */
  keepInMemory(rec: T): void {
    this.records.set(rec.id, rec);
  }

  /**
   * Deletes the record's file, then syncs the directory; `opts.syncDir` false: not synced, for a
   * removal whose loss in a power cut only has start-up redo something idempotent. The record
   * stays in memory until all of it is done, and when any of it fails.
   */
  async remove(id: string, opts: RecordRemoveOptions = {}): Promise<void> {
    const removeFile = () => unlinkIfExists(this.file(id));
    if (opts.syncDir === false) {
      await removeFile();
      await opts.alongsideSync?.();
    } else {
      // Only the file's and the directory's own errors are named here; alongsideSync's pass as
      // they came.
      let failedAlongside: { err: unknown } | undefined;
      const alongside = opts.alongsideSync;
      const tracked = alongside && (() => alongside().catch((err: unknown) => {
        failedAlongside = { err };
        throw err;
      }));
      await changeThenSyncDir(this.dir, removeFile, tracked).catch((err: unknown) => {
        throw failedAlongside?.err === err ? err : fsError(err, this.dir, 'sync');
      });
    }
    this.records.delete(id);
  }

  /** Ids starting with `prefix` (kubelet and crictl accept unique prefixes). */
  matching(prefix: string): T[] {
    const exact = this.records.get(prefix);
    if (exact) return [exact];
    return this.list().filter((r) => r.id.startsWith(prefix));
  }
}
