// libc bindings an unprivileged user can exercise; device nodes, trusted.* xattrs and mounts
// need root: root-test/sys/libc.test.ts.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoCode } from '../errors.js';
import { nativeAddons } from '../native-paths.js';
import { diskUsage } from './disk-usage.js';
import {
  MFD_CLOEXEC, S_IFIFO, atomicCommit, atomicPrepare, fcntl, fdHandoffPair, memfdCreate, mknod, pipeCloexec, receiveFd,
  sealedMemfdCopy, setMallocMmapThreshold, syncDirectory, syncFilesystem,
} from './libc.js';
import { EXE_SEALS, memfdSeals } from './sealed-memfd.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-libc-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('libc bindings', () => {
  it('setMallocMmapThreshold: glibc takes the daemon\'s threshold', () => {
    // The daemon's value (daemon/daemon.ts); its effect on memory is measured, not asserted here.
    expect(() => setMallocMmapThreshold((1 << 20) + (64 << 10))).not.toThrow();
  });

  it("v8WorkersToBatch switches each of V8's worker threads to SCHED_BATCH, and no other thread", () => {
    // In a node of its own, with a pool size of its own: this test's process keeps its policies.
    // /proc/<tid>/stat field 41 is the thread's policy (SCHED_BATCH 3, SCHED_OTHER 0).
    const script = `
      const addon = require(${JSON.stringify(nativeAddons.libc)});
      const fs = require('node:fs');
      const policies = () => fs.readdirSync('/proc/self/task').map((tid) =>
        ({ tid: Number(tid), policy: Number(fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').replace(/^.*\\) /s, '').split(' ')[38]) }));
      const before = policies();
      const first = addon.v8WorkersToBatch();
      const second = addon.v8WorkersToBatch();
      console.log(JSON.stringify({ before, first, second, after: policies() }));`;
    for (const pool of [1, 3]) {
      const out = JSON.parse(execFileSync(process.execPath, [`--v8-pool-size=${pool}`, '-e', script], { encoding: 'utf8' })) as {
        before: { tid: number; policy: number }[]; first: number; second: number; after: { tid: number; policy: number }[];
      };
      expect(out.before.every((t) => t.policy === 0)).toBe(true);
      expect([out.first, out.second]).toEqual([pool, pool]);
      const batch = out.after.filter((t) => t.policy === 3);
      expect(batch).toHaveLength(pool);
      // Not the main thread (its tid is the process's pid, the first listed), nor any other.
      expect(batch.map((t) => t.tid)).not.toContain(out.after[0]!.tid);
      expect(out.after.filter((t) => t.policy !== 0 && t.policy !== 3)).toEqual([]);
    }
  });

  it('mknod makes fifos and reports errno as a Node-style code', () => {
    mknod(join(dir, 'p'), S_IFIFO | 0o644);
    expect(lstatSync(join(dir, 'p')).isFIFO()).toBe(true);
    let err: unknown;
    try {
      mknod(join(dir, 'p'), S_IFIFO | 0o644);
    } catch (e) {
      err = e;
    }
    expect(errnoCode(err)).toBe('EEXIST');
    expect((err as Error).message).toContain(join(dir, 'p'));
  });

  it('flushes a filesystem with syncfs off the event loop, and names the dir of a descriptor it cannot use', async () => {
    // 64 MiB of dirty pages: a flush of tens of ms, through which the event loop keeps turning.
    writeFileSync(join(dir, 'dirty'), Buffer.alloc(64 << 20, 1));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const fh = await open(dir, 'r');
    const started = performance.now();
    try {
      await syncFilesystem(fh.fd, dir);
    } finally {
      await fh.close();
    }
    const ms = performance.now() - started;
    clearInterval(timer);
    rmSync(join(dir, 'dirty'));
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(ms / 10));
    await expect(syncFilesystem(-1, dir)).rejects.toMatchObject({ code: 'EBADF', path: dir });
  });

  it('writes a file in two halves and syncs directories, one pool trip each; a failed step leaves nothing behind', async () => {
    const sub = join(dir, 'synced');
    fs.mkdirSync(sub);
    const files = () => fs.readdirSync(sub).sort();
    fs.writeFileSync(join(sub, 'a'), 'old');
    // The first half: a temp file beside the target with the content and exactly the mode
    // (0o666, which the umask narrows at the open); the target untouched.
    const tmp = await atomicPrepare(join(sub, 'a'), Buffer.from('alpha'), 0o666);
    expect(tmp).toMatch(/^\.tmp-a-[0-9a-f]{12}$/);
    expect(fs.readFileSync(join(sub, 'a'), 'utf8')).toBe('old');
    expect(fs.readFileSync(join(sub, tmp), 'utf8')).toBe('alpha');
    expect(fs.statSync(join(sub, tmp)).mode & 0o777).toBe(0o666);
    // The second half: renamed over the target, the directory synced.
    await atomicCommit(join(sub, 'a'), tmp, true);
    expect(files()).toEqual(['a']);
    expect(fs.readFileSync(join(sub, 'a'), 'utf8')).toBe('alpha');
    const empty = await atomicPrepare(join(sub, 'empty'), new Uint8Array(0), 0o600);
    await atomicCommit(join(sub, 'empty'), empty, false);
    expect(fs.statSync(join(sub, 'empty')).size).toBe(0);

    // A rename that fails removes the temp file and is the rename's error, naming the target.
    fs.mkdirSync(join(sub, 'full', 'child'), { recursive: true });
    const blocked = await atomicPrepare(join(sub, 'full'), Buffer.from('x'), 0o644);
    await expect(atomicCommit(join(sub, 'full'), blocked, true))
      .rejects.toMatchObject({ code: 'EISDIR', syscall: 'rename', path: join(sub, 'full') });
    expect(files()).toEqual(['a', 'empty', 'full']);
    // Only the name of a temp file in the target's directory is taken.
    await expect(atomicCommit(join(sub, 'a'), '../a', true)).rejects.toMatchObject({ code: 'EINVAL', syscall: 'rename' });
    await expect(atomicCommit(join(sub, 'a'), 'empty', true)).rejects.toMatchObject({ code: 'EINVAL' });
    // A directory that is not there: nothing made.
    await expect(atomicPrepare(join(sub, 'missing', 'b'), Buffer.from('x'), 0o644))
      .rejects.toMatchObject({ code: 'ENOENT', syscall: 'write', path: join(sub, 'missing', 'b') });

    await syncDirectory(sub);
    await expect(syncDirectory(join(sub, 'a'))).rejects.toMatchObject({ code: 'ENOTDIR', syscall: 'fsync', path: join(sub, 'a') });
    // Nothing the calls opened is left open.
    expect(fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(sub);
      } catch {
        return false;
      }
    })).toEqual([]);
    // Content that is not a Uint8Array, and a mode with more than mode bits, are refused before anything is made.
    await expect(async () => atomicPrepare(join(sub, 'e'), 'text' as unknown as Uint8Array, 0o644)).rejects.toThrow(TypeError);
    await expect(async () => atomicPrepare(join(sub, 'e'), new Uint16Array(2) as unknown as Uint8Array, 0o644)).rejects.toThrow(TypeError);
    await expect(async () => atomicPrepare(join(sub, 'e'), Buffer.from('x'), 0o100644)).rejects.toThrow(/atomicPrepareAsync: mode/);
    expect(files()).toEqual(['a', 'empty', 'full']);
  });

  it('refuses a string holding a NUL byte rather than passing C the part before it', () => {
    // C would read "cut" and make that file: a path a caller checked whole must reach the kernel whole.
    expect(() => mknod(join(dir, 'cut\0rest'), S_IFIFO | 0o644)).toThrow(TypeError);
    expect(fs.existsSync(join(dir, 'cut'))).toBe(false);
    expect(() => memfdCreate('a\0b')).toThrow(TypeError);
  });

  it('refuses arguments of the wrong type with a TypeError naming the argument', () => {
    expect(() => fcntl('3' as unknown as number, 1, 0, 'x')).toThrow(/fcntl: argument 1 is not an integer/);
  });

  it('gives close-on-exec descriptors, and a failure its errno, syscall and subject', () => {
    const cloexec = (fd: number) => (parseInt(/^flags:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8) & 0o2000000) !== 0;
    const [r, w] = pipeCloexec();
    const m = memfdCreate('crib-libc-test', MFD_CLOEXEC);
    try {
      expect([cloexec(r), cloexec(w), cloexec(m)]).toEqual([true, true, true]);
      fs.writeSync(w, 'x');
      expect(fs.readFileSync(`/proc/self/fd/${m}`).length).toBe(0);
    } finally {
      for (const fd of [r, w, m]) fs.closeSync(fd);
    }
    expect(() => fcntl(r, 1 /* F_GETFD */, 0, `F_GETFD on fd ${r}`))
      .toThrow(expect.objectContaining({ code: 'EBADF', errno: 9, syscall: 'fcntl', message: `fcntl F_GETFD on fd ${r}: EBADF` }));
  });

  it('makes sealed memfd copies with the helpers\' own code, and names what failed', () => {
    writeFileSync(join(dir, 'bin'), 'bytes of a binary');
    const fd = sealedMemfdCopy(join(dir, 'bin'), 'crib-test');
    try {
      expect(memfdSeals(fd) & EXE_SEALS).toBe(EXE_SEALS);
      expect(fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8')).toBe('bytes of a binary');
      expect(() => fs.writeSync(fd, 'x')).toThrow(expect.objectContaining({ code: 'EPERM' }));
    } finally {
      fs.closeSync(fd);
    }
    expect(() => sealedMemfdCopy(join(dir, 'none'), 'crib-test'))
      .toThrow(expect.objectContaining({ code: 'ENOENT', errno: 2, message: `open \`${join(dir, 'none')}\`: No such file or directory` }));
  });

  it('receiveFd never blocks: EAGAIN while nothing was sent, undefined once the peer closed', () => {
    // Sending happens in native code (crib-pinns port-forward); the handoff itself is covered
    // by root-test/streaming/server/port-forward-relay.test.ts.
    const [ours, theirs] = fdHandoffPair();
    try {
      expect(() => receiveFd(ours)).toThrow(expect.objectContaining({ code: 'EAGAIN', syscall: 'recvmsg' }));
      fs.closeSync(theirs);
      expect(receiveFd(ours)).toBeUndefined();
    } finally {
      fs.closeSync(ours);
    }
  });

  it('diskUsage counts hardlinked inodes once', async () => {
    const d = join(dir, 'du');
    fs.mkdirSync(d);
    writeFileSync(join(d, 'a'), Buffer.alloc(64 * 1024, 1));
    fs.linkSync(join(d, 'a'), join(d, 'a2'));
    const u = await diskUsage(d);
    expect(u.inodes).toBe(2); // the dir and one file
    expect(u.bytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(u.bytes).toBeLessThan(2 * 64 * 1024);
    expect(await diskUsage(join(dir, 'nope'))).toEqual({ bytes: 0, inodes: 0 });
  });
});
