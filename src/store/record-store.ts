// A directory of JSON records, one file per id, written write-temp + fsync + rename so a crash
// leaves either the old record or the new one. The in-memory map is the read path; disk is
// written before a change is acknowledged.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { fsyncDir, isAtomicTemp, readJson, writeJsonAtomic } from './atomic-file.js';

const ID_FILE = /^([0-9a-f]{64})\.json$/;

export class RecordStore<T extends { id: string }> {
  private readonly records = new Map<string, T>();

  constructor(readonly dir: string) {}

  async load(): Promise<T[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.records.clear();
    for (const name of await readdir(this.dir)) {
      if (isAtomicTemp(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const m = ID_FILE.exec(name);
      if (!m) continue;
      const rec = await readJson<T>(join(this.dir, name));
      if (rec) this.records.set(rec.id, rec);
    }
    return this.list();
  }

  get(id: string): T | undefined {
    return this.records.get(id);
  }

  list(): T[] {
    return [...this.records.values()];
  }

  async put(rec: T): Promise<T> {
    await writeJsonAtomic(join(this.dir, `${rec.id}.json`), rec, 0o600);
    this.records.set(rec.id, rec);
    return rec;
  }

  /** Apply `change` to a copy of the record and persist it. */
  async update(id: string, change: (rec: T) => void): Promise<T> {
    const cur = this.records.get(id);
    if (!cur) throw new Error(`record ${id} vanished`);
    const next = structuredClone(cur);
    change(next);
    return this.put(next);
  }

  async remove(id: string): Promise<void> {
    try {
      await rm(join(this.dir, `${id}.json`));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    await fsyncDir(this.dir);
    this.records.delete(id);
  }

  /** Ids starting with `prefix` (kubelet and crictl accept unique prefixes). */
  matching(prefix: string): T[] {
    const exact = this.records.get(prefix);
    if (exact) return [exact];
    return this.list().filter((r) => r.id.startsWith(prefix));
  }
}
