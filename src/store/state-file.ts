// One persisted JSON document (the IPAM allocations, the host-port table, a pod's CNI result, a
// snapshot's record), written atomically (atomic-file.ts) and versioned (schema.ts). The caller
// keeps what it needs in memory and serialises its own read-modify-write cycles.
import { basename, dirname } from 'node:path';
import { errnoCode, fsError } from '../errors.js';
import { changeThenSyncDir, readJson, sweepInterruptedWrites, unlinkIfExists, writeJsonAtomicMkdir, type AtomicWriteOptions } from './atomic-file.js';
import { decodeDocument, encodeDocument, type Schema } from './schema.js';

export class StateFile<T extends object> {
  constructor(
    readonly path: string,
    readonly schema: Schema<T>,
    /** The file's mode; its directory is made 0700 when missing. */
    private readonly mode = 0o600,
  ) {}

  /** The document, migrated to the current schema; undefined when the file does not exist. */
  async read(): Promise<T | undefined> {
    const raw = await readJson(this.path);
    return raw === undefined ? undefined : decodeDocument(this.schema, raw, this.path).value;
  }

  /** `opts.syncDir` false: the caller vouches for the file's name (atomic-file.ts says when). */
  async write(value: T, opts: AtomicWriteOptions = {}): Promise<void> {
    await writeJsonAtomicMkdir(this.path, encodeDocument(this.schema, value), this.mode, opts);
  }

  /** Delete the file; fine when it is already gone. */
  async remove(): Promise<void> {
    await changeThenSyncDir(dirname(this.path), () => unlinkIfExists(this.path)).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw fsError(err, dirname(this.path), 'sync');
    });
  }

  /**
   * Remove the temp files interrupted writes of this document left. Call it once before the
   * first read, while nothing writes the document.
   */
  async sweep(): Promise<number> {
    return sweepInterruptedWrites(dirname(this.path), basename(this.path));
  }
}
