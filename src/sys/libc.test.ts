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
  MFD_CLOEXEC, S_IFIFO, fcntl, fdHandoffPair, memfdCreate, mknod, pipeCloexec, receiveFd, sealedMemfdCopy, setMallocMmapThreshold,
  syncFilesystem,
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
