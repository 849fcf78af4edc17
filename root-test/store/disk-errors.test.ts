// What the persistence layer does when the disk says no, on real filesystems: a tmpfs filled to
// the last byte (ENOSPC), the same tmpfs remounted read-only (EROFS), an immutable directory
// (EPERM), a directory this process may not write once it is not root (EACCES), and a process
// out of file descriptors (EMFILE). Each failure must come back with the status that says who
// can fix it and a message naming the record file and the OS's reason; the old content must be
// intact and no temp file left behind.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FailedPreconditionError, PermissionDeniedError, ResourceExhaustedError, toGrpcStatus,
} from '../../src/errors.js';
import { RecordStore } from '../../src/store/record-store.js';
import { defineSchema } from '../../src/store/schema.js';
import { StateFile } from '../../src/store/state-file.js';
import { openUnder } from '../../test-support/open-files.js';

interface Rec {
  id: string;
  note: string;
}
const SCHEMA = defineSchema<Rec>('test record');
const ID = 'a'.repeat(64);

let base: string;
const mounts: string[] = [];

function tmpfs(name: string, size = '64k'): string {
  const dir = join(base, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Write zeros to a file in `dir` until the filesystem has not one byte left. */
function fill(dir: string): void {
  const fd = openSync(join(dir, 'filler'), 'w');
  try {
    for (const chunk of [Buffer.alloc(4096), Buffer.alloc(1)]) {
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The error `p` rejects with; a test failure when it resolves. */
const failure = (p: Promise<unknown>): Promise<Error> =>
  p.then(() => { throw new Error('the call succeeded, a failure was expected'); }, (e: unknown) => e as Error);
const temps = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.tmp-'));

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), `crib-disk-errors-${process.pid}-`));
});
afterEach(async () => {
  for (const m of mounts.splice(0).reverse()) {
    // Every write, removal and sync has closed what it opened by the time it settled, failed or
    // not (a directory's sync opens and closes it in one trip to the pool).
    expect(openUnder(m)).toEqual([]);
    execFileSync('umount', [m]);
  }
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('a full disk (ENOSPC)', () => {
  it('fails a record write with RESOURCE_EXHAUSTED naming the record, keeping the old record', async () => {
    const dir = tmpfs('full-records');
    const store = new RecordStore<Rec>(join(dir, 'recs'), SCHEMA);
    await store.load();
    await store.put({ id: ID, note: 'old' });
    const before = readFileSync(store.file(ID), 'utf8');
    fill(dir);

    const err = await failure(store.update(ID, (r) => (r.note = 'new'.repeat(100))));
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.message).toBe(`write ${store.file(ID)}: no space left on device`);
    expect(toGrpcStatus(err)).toEqual({ code: status.RESOURCE_EXHAUSTED, details: err.message });
    expect(readFileSync(store.file(ID), 'utf8')).toBe(before);
    expect(store.get(ID)?.note).toBe('old');
    expect(temps(join(dir, 'recs'))).toEqual([]);
  });

  it('fails a state file write the same way', async () => {
    const dir = tmpfs('full-state');
    const doc = new StateFile<{ n: number }>(join(dir, 'net', 'ipam.json'), defineSchema('IPAM file'));
    await doc.write({ n: 1 });
    fill(dir);
    const err = await failure(doc.write({ n: 2 }));
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.message).toBe(`write ${doc.path}: no space left on device`);
    expect(await doc.read()).toEqual({ n: 1 });
    expect(temps(join(dir, 'net'))).toEqual([]);
  });

  it('answers any unwrapped system error precisely at the RPC boundary', async () => {
    const dir = tmpfs('full-raw');
    fill(dir);
    // An error no domain wrapped: Node's own, as fs.writeFile raises it.
    const raw = await writeFile(join(dir, 'hosts'), 'x'.repeat(10_000)).catch((e: unknown) => e);
    expect(toGrpcStatus(raw)).toEqual({ code: status.RESOURCE_EXHAUSTED, details: 'write: no space left on device' });
    const missing = await readFile(join(dir, 'missing')).catch((e: unknown) => e);
    // A file crib expected being gone is not the CRI object being gone: INTERNAL, but precise.
    expect(toGrpcStatus(missing)).toEqual({ code: status.INTERNAL, details: `open ${join(dir, 'missing')}: no such file or directory` });
    // Not a system error: a bug, whose details stay in the daemon's log.
    expect(toGrpcStatus(new TypeError('x is undefined')).details).toBe('internal error (see the crib daemon log)');
  });
});

describe('a read-only filesystem (EROFS)', () => {
  it('fails writes and removals with FAILED_PRECONDITION naming the file, changing nothing', async () => {
    const dir = tmpfs('ro');
    const store = new RecordStore<Rec>(join(dir, 'recs'), SCHEMA);
    await store.load();
    await store.put({ id: ID, note: 'old' });
    execFileSync('mount', ['-o', 'remount,ro', dir]);

    const err = await failure(store.put({ id: ID, note: 'new' }));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err.message).toBe(`write ${store.file(ID)}: read-only file system`);
    expect(toGrpcStatus(err).code).toBe(status.FAILED_PRECONDITION);
    const gone = await failure(store.remove(ID));
    expect(gone).toBeInstanceOf(FailedPreconditionError);
    expect(gone.message).toBe(`remove ${store.file(ID)}: read-only file system`);
    expect(JSON.parse(readFileSync(store.file(ID), 'utf8'))).toEqual({ version: 1, id: ID, note: 'old' });
    expect(store.get(ID)?.note).toBe('old');
  });
});

describe('refused permission', () => {
  it('EPERM (an immutable directory) is PERMISSION_DENIED naming the file', async () => {
    const dir = tmpfs('immutable');
    const doc = new StateFile<{ n: number }>(join(dir, 'hostports.json'), defineSchema('host ports file'));
    await doc.write({ n: 1 });
    execFileSync('chattr', ['+i', dir]);
    let err: Error;
    try {
      err = await failure(doc.write({ n: 2 }));
    } finally {
      execFileSync('chattr', ['-i', dir]);
    }
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err.message).toBe(`write ${doc.path}: operation not permitted`);
    expect(await doc.read()).toEqual({ n: 1 });
  });

  it('EACCES (a directory this user may not write) is PERMISSION_DENIED naming the file', async () => {
    const dir = tmpfs('denied');
    const store = new RecordStore<Rec>(join(dir, 'recs'), SCHEMA);
    await store.load(); // 0700, root's
    // Root passes every mode check; as nobody, the directory's mode is what decides.
    process.seteuid!(65534);
    let err: Error;
    try {
      err = await failure(store.put({ id: ID, note: 'x' }));
    } finally {
      process.seteuid!(0);
    }
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err.message).toBe(`write ${store.file(ID)}: permission denied`);
    expect(toGrpcStatus(err).code).toBe(status.PERMISSION_DENIED);
  });
});

describe('no file descriptors left (EMFILE)', () => {
  it('is RESOURCE_EXHAUSTED naming the file', async () => {
    const dir = join(base, 'emfile');
    const store = new RecordStore<Rec>(dir, SCHEMA);
    await store.load();
    const limits = () => execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--noheadings', '--output', 'SOFT,HARD'])
      .toString().trim().split(/\s+/);
    const [soft, hard] = limits();
    const held: number[] = [];
    let err: Error;
    // Some descriptors above what is open now (enough to spawn prlimit again once they are
    // given back), then every one of them taken.
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${readdirSync('/proc/self/fd').length + 32}:${hard}`]);
    try {
      try {
        for (;;) held.push(openSync('/dev/null', 'r'));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('EMFILE');
      }
      err = await failure(store.put({ id: ID, note: 'x' }));
    } finally {
      for (const fd of held) closeSync(fd);
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
    }
    expect(limits()).toEqual([soft, hard]);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.message).toBe(`write ${store.file(ID)}: too many open files`);
    expect(readdirSync(dir)).toEqual([]);
  });

});
