import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLossError } from '../errors.js';
import { changeThenSyncDir, prepareFileAtomic, readJson, sweepInterruptedWrites, writeFileAtomic, writeJsonAtomic } from './atomic-file.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-atomic-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic-file', () => {
  it('writes, replaces and reads back JSON with the requested mode, leaving no temp files', async () => {
    const p = join(dir, 'rec.json');
    await writeJsonAtomic(p, { a: 1 }, 0o600);
    expect(await readJson(p)).toEqual({ a: 1 });
    expect(statSync(p).mode & 0o777).toBe(0o600);
    await writeJsonAtomic(p, { a: 2, b: ['x'] });
    expect(await readJson(p)).toEqual({ a: 2, b: ['x'] });
    expect(statSync(p).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir)).toEqual(['rec.json']);
  });

  it('returns undefined for a missing file and DataLossError for a corrupt one', async () => {
    expect(await readJson(join(dir, 'missing.json'))).toBeUndefined();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"torn');
    await expect(readJson(bad)).rejects.toBeInstanceOf(DataLossError);
  });

  it('leaves the old content and no temp file when a write fails', async () => {
    const p = join(dir, 'keep.txt');
    await writeFileAtomic(p, 'old');
    // Content that is neither a string nor bytes is refused before anything is made.
    await expect(writeFileAtomic(p, 42 as unknown as string)).rejects.toThrow();
    const { readFileSync, mkdirSync } = await import('node:fs');
    expect(readFileSync(p, 'utf8')).toBe('old');
    // A non-empty directory in the target's place makes the rename itself fail.
    mkdirSync(join(dir, 'blocked', 'child'), { recursive: true });
    await expect(writeFileAtomic(join(dir, 'blocked'), 'z')).rejects.toThrow();
    expect(readdirSync(dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('prepares a replacement synced under a temp name: in place only on commit, gone on abort', async () => {
    const { mkdirSync, readFileSync } = await import('node:fs');
    const sub = join(dir, 'prepared');
    mkdirSync(sub);
    const p = join(sub, 'rec.json');
    await writeFileAtomic(p, 'old', 0o600);
    const next = await prepareFileAtomic(p, 'new', 0o600);
    // Written and synced, but the target is still the old one: a crash here leaves it and a temp file the sweep takes.
    expect(readFileSync(p, 'utf8')).toBe('old');
    const temps = readdirSync(sub).filter((n) => n.startsWith('.tmp-rec.json-'));
    expect(temps).toHaveLength(1);
    expect(readFileSync(join(sub, temps[0]!), 'utf8')).toBe('new');
    await next.commit();
    expect(readFileSync(p, 'utf8')).toBe('new');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readdirSync(sub)).toEqual(['rec.json']);
    const dropped = await prepareFileAtomic(p, 'never', 0o600);
    await dropped.abort();
    expect(readFileSync(p, 'utf8')).toBe('new');
    expect(readdirSync(sub)).toEqual(['rec.json']);
  });

  it('gives the exact mode whether or not the umask narrows it, and an empty file too', async () => {
    // 0o666 is narrowed by any usual umask (022, 002, 077): the chmod path; 0o600 by none of them.
    for (const mode of [0o666, 0o600, 0o640]) {
      const p = join(dir, `mode-${mode.toString(8)}`);
      await writeFileAtomic(p, 'x', mode);
      expect(statSync(p).mode & 0o777).toBe(mode);
    }
    const empty = join(dir, 'empty');
    await writeFileAtomic(empty, '', 0o600);
    expect(readFileSync(empty, 'utf8')).toBe('');
    expect(statSync(empty).mode & 0o777).toBe(0o600);
  });

  it('leaves no descriptor open once a write, a commit or an abort has resolved', async () => {
    const sub = join(dir, 'fds');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    const open = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(sub);
      } catch {
        return false; // the directory listing's own descriptor, closed meanwhile
      }
    });
    await writeFileAtomic(join(sub, 'a'), 'a');
    await (await prepareFileAtomic(join(sub, 'b'), 'b', 0o644, { syncDir: false })).commit();
    await (await prepareFileAtomic(join(sub, 'c'), 'c')).abort();
    await expect(writeFileAtomic(join(sub, 'd'), 42 as unknown as string)).rejects.toThrow();
    // The directory's descriptor is closed after the call (nobody waits for it): a tick later.
    await new Promise((r) => setTimeout(r, 50));
    expect(open()).toEqual([]);
    expect(readdirSync(sub).sort()).toEqual(['a', 'b']);
  });

  it('changes a directory, then syncs it and leaves it closed; a failed change is thrown as it came', async () => {
    const sub = join(dir, 'change-sync');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    writeFileSync(join(sub, 'old'), 'x');
    const dirFds = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === sub;
      } catch {
        return false;
      }
    });
    const result = await changeThenSyncDir(sub, async () => {
      await rename(join(sub, 'old'), join(sub, 'new'));
      return 'renamed';
    });
    expect(result).toBe('renamed');
    expect(readdirSync(sub)).toEqual(['new']);
    // The sync opens and closes the directory in the same trip to the pool.
    expect(dirFds()).toEqual([]);
    const refused = Object.assign(new Error('refused'), { code: 'EACCES' });
    await expect(changeThenSyncDir(join(sub, 'missing'), async () => { throw refused; })).rejects.toBe(refused);
    await expect(changeThenSyncDir(join(sub, 'missing'), async () => 1)).rejects.toMatchObject({ code: 'ENOENT' });
    await new Promise((r) => setTimeout(r, 50));
    expect(dirFds()).toEqual([]);
  });

  it('runs `alongside` once the change is done, beside the sync, and waits for both', async () => {
    const sub = mkdtempSync(join(dir, 'alongside-'));
    writeFileSync(join(sub, 'old'), 'x');
    const seen: string[][] = [];
    let alongsideEnded = false;
    const result = await changeThenSyncDir(sub, async () => {
      await rename(join(sub, 'old'), join(sub, 'new'));
      return 'renamed';
    }, async () => {
      seen.push(readdirSync(sub));
      await new Promise((r) => setTimeout(r, 30));
      alongsideEnded = true;
    });
    expect(result).toBe('renamed');
    expect(seen).toEqual([['new']]);
    expect(alongsideEnded).toBe(true);

    // Not gated on the sync: it runs even when the sync fails, and the sync's failure is thrown.
    const missing = join(sub, 'missing');
    let ran = 0;
    await expect(changeThenSyncDir(missing, async () => 1, async () => { ran++; })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(ran).toBe(1);
    // Its own failure is thrown as it came, after the sync; a failed change runs nothing beside.
    const busy = Object.assign(new Error('busy'), { code: 'EBUSY' });
    await expect(changeThenSyncDir(sub, async () => 1, async () => { throw busy; })).rejects.toBe(busy);
    await expect(changeThenSyncDir(sub, async () => { throw busy; }, async () => { ran++; })).rejects.toBe(busy);
    expect(ran).toBe(1);
  });

  it('calls onRenamed once the file is in place, before the commit resolves; not when the rename fails', async () => {
    const sub = join(dir, 'renamed');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(sub, 'blocked', 'child'), { recursive: true });
    const seen: string[] = [];
    const p = join(sub, 'rec.json');
    const next = await prepareFileAtomic(p, 'new', 0o600, { onRenamed: () => void seen.push(readFileSync(p, 'utf8')) });
    expect(seen).toEqual([]);
    await next.commit();
    expect(seen).toEqual(['new']);
    const blocked = await prepareFileAtomic(join(sub, 'blocked'), 'z', 0o600, { onRenamed: () => void seen.push('blocked') });
    await expect(blocked.commit()).rejects.toThrow();
    expect(seen).toEqual(['new']);
    expect(readdirSync(sub).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('waits for the promise onRenamed returns before the commit resolves, and rejects with its error as it came', async () => {
    const sub = join(dir, 'renamed-async');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub, { recursive: true });
    let finish!: () => void;
    const work = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const next = await prepareFileAtomic(join(sub, 'a.json'), 'a', 0o600, { onRenamed: () => work });
    let committed = false;
    const commit = next.commit().then(() => {
      committed = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(committed).toBe(false);
    finish();
    await commit;
    expect(committed).toBe(true);
    const refused = new Error('the alongside work failed');
    const failing = await prepareFileAtomic(join(sub, 'b.json'), 'b', 0o600, { onRenamed: async () => { throw refused; } });
    await expect(failing.commit()).rejects.toBe(refused);
    // The file is in place all the same: the work came after it.
    expect(readFileSync(join(sub, 'b.json'), 'utf8')).toBe('b');
  });

  it('sweeps what interrupted writes left: all of them, or one target\'s', async () => {
    const sweep = join(dir, 'sweep');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sweep);
    const names = ['a.json', '.tmp-a.json-0123456789ab', '.tmp-b.json-0123456789ab', '.a.json.0123456789ab.tmp', '.hidden', 'b.json'];
    for (const n of names) writeFileSync(join(sweep, n), '{}');
    expect(await sweepInterruptedWrites(sweep, 'a.json')).toBe(2);
    expect(readdirSync(sweep).sort()).toEqual(['.hidden', '.tmp-b.json-0123456789ab', 'a.json', 'b.json']);
    expect(await sweepInterruptedWrites(sweep)).toBe(1);
    expect(readdirSync(sweep).sort()).toEqual(['.hidden', 'a.json', 'b.json']);
    expect(await sweepInterruptedWrites(join(dir, 'no-such-dir'))).toBe(0);
  });
});
