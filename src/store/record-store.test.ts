import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordStore } from './record-store.js';
import { defineSchema } from './schema.js';

interface Thing { id: string; name: string }
const THING = defineSchema<Thing>('thing record');
const ID = 'a'.repeat(64);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-records-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function storeWithOne(name: string): Promise<RecordStore<Thing>> {
  const store = new RecordStore<Thing>(join(dir, name), THING);
  await store.load();
  await store.put({ id: ID, name });
  return store;
}

describe('RecordStore.remove', () => {
  it('runs alongsideSync once the file is gone, with the record still in memory, and forgets it after', async () => {
    for (const syncDir of [true, false]) {
      const store = await storeWithOne(`alongside-${syncDir}`);
      const seen: { fileThere: boolean; inMemory: boolean }[] = [];
      await store.remove(ID, {
        syncDir,
        alongsideSync: async () => {
          seen.push({ fileThere: existsSync(store.file(ID)), inMemory: store.get(ID) !== undefined });
        },
      });
      expect(seen).toEqual([{ fileThere: false, inMemory: true }]);
      expect(store.get(ID)).toBeUndefined();
    }
  });

  it('keeps the record in memory when alongsideSync fails, and throws its error as it came', async () => {
    const store = await storeWithOne('alongside-fails');
    // A system error (errno code and syscall), which the store would name as its sync's if it
    // came from the directory: it is the caller's own, and passes as it came.
    const refused = Object.assign(new Error('EBUSY: resource busy, rename'), { code: 'EBUSY', errno: -16, syscall: 'rename' });
    await expect(store.remove(ID, { alongsideSync: async () => { throw refused; } })).rejects.toBe(refused);
    expect(existsSync(store.file(ID))).toBe(false);
    expect(store.get(ID)).toMatchObject({ id: ID });
    // A retry finds no file to remove, runs the rest again and forgets the record.
    let again = 0;
    await store.remove(ID, { alongsideSync: async () => { again++; } });
    expect(again).toBe(1);
    expect(store.get(ID)).toBeUndefined();
  });
});
