// crib_atomic_write_file (native/common/atomic-file.c), the one atomic writer of every native
// binary, driven through a small C driver on real filesystems: a tiny tmpfs that runs out of
// space, a read-only one, a target that cannot be replaced, concurrent writers; and its variant
// without the syncs (crib_atomic_replace_file, for pid files).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** What a leftover temp file of `name` looks like (crib-atomic-file.h). */
const tempOf = (name: string) => new RegExp(`\\.tmp-${name.replace(/\./g, '\\.')}-[0-9a-f]{12}`);

let work: string;
let driver: string;
const mounts: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'crib-atomic-'));
  driver = join(work, 'atomic-file-driver');
  // The Makefile's flags, so a warning the build rejects fails here too.
  execFileSync('cc', ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Wformat=2', '-Werror', '-O2',
    '-Wl,--wrap=fsync', '-I', join(nativeDir, 'include'), '-o', driver, join(nativeDir, 'test/support/atomic-file-driver.c'),
    ...['atomic-file.c', 'error.c', 'io.c'].map((f) => join(nativeDir, 'common', f))]);
});

afterAll(async () => {
  for (const m of mounts.reverse()) execFileSync('umount', [m]);
  await rm(work, { recursive: true, force: true });
});

interface Result { code: number | null; stderr: string }

/** Runs the driver; `stdout` is its "fsyncs <n>" line on success. */
function drive(args: string[], data: string | Buffer): Promise<Result & { stdout: string }> {
  return new Promise((res, rej) => {
    const p = spawn(driver, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', rej);
    p.on('close', (code) => res({ code, stdout, stderr }));
    p.stdin.end(data);
  });
}

async function write(path: string, data: string | Buffer, mode = '644'): Promise<Result> {
  const { code, stderr } = await drive([path, mode], data);
  return { code, stderr };
}

/** A fresh tmpfs of `size` at a new dir under work (unmounted in afterAll). */
function tmpfs(name: string, options: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

describe('crib_atomic_write_file', () => {
  it('creates the file with exactly the mode asked for, whatever the umask, and leaves no temp', async () => {
    const dir = join(work, 'create');
    mkdirSync(dir);
    const path = join(dir, 'state.json');
    expect(await write(path, '{"a":1}', '644')).toEqual({ code: 0, stderr: '' });
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}');
    // The driver runs with umask 077: 0644 comes through whole.
    expect(statSync(path).mode & 0o7777).toBe(0o644);
    expect(readdirSync(dir)).toEqual(['state.json']);
    expect(await write(path, 'x', '600')).toEqual({ code: 0, stderr: '' });
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  it('replaces an existing file by rename (a new inode), even an empty write', async () => {
    const dir = join(work, 'replace');
    mkdirSync(dir);
    const path = join(dir, 'pid');
    writeFileSync(path, 'old content');
    const before = statSync(path).ino;
    expect((await write(path, '4242')).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('4242');
    expect(statSync(path).ino).not.toBe(before);
    expect((await write(path, '')).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(readdirSync(dir)).toEqual(['pid']);
  });

  it('writes a large file whole', async () => {
    const dir = join(work, 'large');
    mkdirSync(dir);
    const data = Buffer.alloc(8 << 20, 'abcdefgh');
    expect((await write(join(dir, 'big'), data)).code).toBe(0);
    expect(readFileSync(join(dir, 'big')).equals(data)).toBe(true);
  });

  it('on a full filesystem: fails naming write and ENOSPC, keeps the old file, leaves no temp', async () => {
    const dir = tmpfs('full', 'size=64k,mode=755');
    const path = join(dir, 'state.json');
    expect((await write(path, 'old state')).code).toBe(0);
    const r = await write(path, Buffer.alloc(256 << 10, 'n'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^atomic-file-driver: write `.*\/full\/\.tmp-state\.json-[0-9a-f]{12}`: No space left on device\n$/);
    expect(readFileSync(path, 'utf8')).toBe('old state');
    expect(readdirSync(dir)).toEqual(['state.json']);
    // Space is back once the big write is gone: the next write works.
    expect((await write(path, 'new state')).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('new state');
  });

  it('on a full filesystem with no room even for the temp inode: fails at open, nothing made', async () => {
    const dir = tmpfs('noinodes', 'size=64k,nr_inodes=2,mode=755');
    const path = join(dir, 'exit');
    // The root directory takes one inode, this file the other.
    expect((await write(path, 'first')).code).toBe(0);
    const r = await write(path, 'second');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/open `.*\/noinodes\/\.tmp-exit-[0-9a-f]{12}`: No space left on device/);
    expect(readFileSync(path, 'utf8')).toBe('first');
    expect(readdirSync(dir)).toEqual(['exit']);
  });

  it('on a read-only filesystem: fails with EROFS and the path', async () => {
    const dir = tmpfs('ro', 'size=64k,ro');
    const r = await write(join(dir, 'state.json'), 'x');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/open `.*\/ro\/\.tmp-state\.json-[0-9a-f]{12}`: Read-only file system/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when the rename fails (the target is a non-empty directory): no temp left, the target unchanged', async () => {
    const dir = join(work, 'rename');
    mkdirSync(join(dir, 'target', 'inside'), { recursive: true });
    const r = await write(join(dir, 'target'), 'x');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(tempOf('target'));
    expect(r.stderr).toMatch(/rename `.*` to `.*\/rename\/target`: (Is a directory|Directory not empty)/);
    expect(readdirSync(dir)).toEqual(['target']);
    expect(readdirSync(join(dir, 'target'))).toEqual(['inside']);
  });

  it('a missing directory or a path naming no file is a clear error', async () => {
    const missing = await write(join(work, 'no-such-dir', 'f'), 'x');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/open directory `.*\/no-such-dir`: No such file or directory/);
    const noName = await write(`${work}/`, 'x');
    expect(noName.code).toBe(1);
    expect(noName.stderr).toMatch(/the path names no file/);
  });

  it('replaces a symlink at the target itself, never writing through it', async () => {
    const dir = join(work, 'symlink');
    mkdirSync(dir);
    const victim = join(work, 'victim');
    writeFileSync(victim, 'do not touch');
    symlinkSync(victim, join(dir, 'state.json'));
    expect((await write(join(dir, 'state.json'), 'mine')).code).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('do not touch');
    expect(lstatSync(join(dir, 'state.json')).isFile()).toBe(true);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('mine');
    // A symlink planted as the parent is followed (the caller names the directory), so this
    // writes into the link's target directory, which is what the path says.
    symlinkSync(dir, join(work, 'dirlink'));
    expect((await write(join(work, 'dirlink', 'other'), 'via link')).code).toBe(0);
    expect(readlinkSync(join(work, 'dirlink'))).toBe(dir);
    expect(readFileSync(join(dir, 'other'), 'utf8')).toBe('via link');
  });

  it('concurrent writers: the file ends as one of them, whole; no temp left', async () => {
    const dir = join(work, 'concurrent');
    mkdirSync(dir);
    const path = join(dir, 'state.json');
    const bodies = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}:${'x'.repeat(64 << 10)}`);
    const results = await Promise.all(bodies.map((b) => write(path, b)));
    expect(results.map((r) => r.code)).toEqual(bodies.map(() => 0));
    expect(bodies).toContain(readFileSync(path, 'utf8'));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('crib_atomic_replace_file', () => {
  it('syncs neither the file nor its directory, where crib_atomic_write_file syncs both', async () => {
    const dir = join(work, 'no-sync');
    mkdirSync(dir);
    const path = join(dir, 'exec.pid');
    expect(await drive([path, '600'], '41')).toEqual({ code: 0, stdout: 'fsyncs 2\n', stderr: '' });
    expect(await drive([path, '600', '--no-sync'], '4242')).toEqual({ code: 0, stdout: 'fsyncs 0\n', stderr: '' });
  });

  it('still replaces atomically: a new inode with the exact mode, no temp left', async () => {
    const dir = join(work, 'no-sync-replace');
    mkdirSync(dir);
    const path = join(dir, 'pid');
    writeFileSync(path, 'old');
    const before = statSync(path).ino;
    expect((await drive([path, '600', '--no-sync'], '77')).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('77');
    expect(statSync(path).ino).not.toBe(before);
    expect(statSync(path).mode & 0o7777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['pid']);
  });

  it('fails as the durable writer does on a full filesystem, keeping the old file', async () => {
    const dir = tmpfs('no-sync-full', 'size=64k,mode=755');
    const path = join(dir, 'pid');
    expect((await drive([path, '644', '--no-sync'], '1')).code).toBe(0);
    const r = await drive([path, '644', '--no-sync'], Buffer.alloc(256 << 10, 'n'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^atomic-file-driver: write `.*\/no-sync-full\/\.tmp-pid-[0-9a-f]{12}`: No space left on device\n$/);
    expect(readFileSync(path, 'utf8')).toBe('1');
    expect(readdirSync(dir)).toEqual(['pid']);
  });
});
