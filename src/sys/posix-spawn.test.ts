import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readToEnd } from './child-output.js';
import { pipeCloexec } from './libc.js';
import { spawnWithoutFork } from './posix-spawn.js';

const run = async (script: string) => {
  const p = await spawnWithoutFork('/bin/sh', ['-c', script]);
  const [stdout, stderr, exit] = await Promise.all([readToEnd(p.stdout), readToEnd(p.stderr), p.exited]);
  return { stdout, stderr, exit, pid: p.pid };
};

describe('spawnWithoutFork', () => {
  it('runs the command with its output on pipes, stdin from /dev/null, and reports its exit code', async () => {
    const r = await run('echo out; echo err >&2; cat; exit 3');
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', exit: { code: 3, signal: null } });
  });

  it('reports the signal that killed it, and reaps it', async () => {
    const r = await run('kill -9 $$');
    expect(r.exit).toEqual({ code: null, signal: 9 });
    // Reaped: no zombie of it is left.
    await expect(readToEnd((await spawnWithoutFork('/bin/cat', [`/proc/${r.pid}/stat`])).stdout)).resolves.toBe('');
  });

  it('reaps many children that end together, each with its own exit code', async () => {
    // Their pipes end as they exit, a moment before each can be reaped: those not reaped at once
    // wait together for the next SIGCHLD.
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => run(`exit ${i}`)));
    expect(runs.map((r) => r.exit.code)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const left = runs.filter((r) => existsSync(`/proc/${r.pid}`));
    expect(left.map((r) => readFileSync(`/proc/${r.pid}/stat`, 'utf8'))).toEqual([]);
  });

  it('hands over the daemon\'s environment when given none, and only the given one otherwise, searching its PATH', async () => {
    const envOf = async (opts: { env?: NodeJS.ProcessEnv }) => {
      const p = await spawnWithoutFork('env', [], opts);
      const [out] = await Promise.all([readToEnd(p.stdout), readToEnd(p.stderr), p.exited]);
      return out.trim().split('\n').sort();
    };
    const own = Object.entries(process.env).map(([k, v]) => `${k}=${v}`).sort();
    // Twice: the second spawn uses the conversion the first one made.
    expect(await envOf({})).toEqual(own);
    expect(await envOf({})).toEqual(own);
    expect(await envOf({ env: { PATH: '/usr/bin:/bin', A: '1' } })).toEqual(['A=1', 'PATH=/usr/bin:/bin']);
    await expect(spawnWithoutFork('env', [], { env: { PATH: '/nonexistent' } })).rejects.toThrow('not found in PATH /nonexistent');
  });

  it('hands over no blocked signal and not the daemon\'s SIGPIPE ignore', async () => {
    const r = await run('grep -E "^Sig(Ign|Blk)" /proc/self/status');
    const [blk, ign] = [...r.stdout.matchAll(/^Sig(?:Blk|Ign):\s*([0-9a-f]+)$/gm)].map((m) => BigInt(`0x${m[1]}`));
    expect(blk).toBe(0n);
    // glibc's posix_spawn leaves its two internal signals (32, 33) ignored in the child; the
    // monitor resets them before it runs anything else (native/monitor/fd-util.c).
    expect(ign! & ~((1n << 31n) | (1n << 32n))).toBe(0n);
  });

  it('hands over no descriptor of the daemon that child_process would not', async () => {
    // Beyond 0-2 and ls's own directory descriptor (3), only what this process itself inherited
    // without close-on-exec (a test runner's pipe) may show: the same set child_process passes.
    const listing = (text: string) => text.trim().split('\n').map(Number).filter((fd) => fd !== 3);
    const r = await run('ls /proc/self/fd');
    const viaNode = spawnSync('/bin/sh', ['-c', 'ls /proc/self/fd'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(listing(r.stdout).slice(0, 3)).toEqual([0, 1, 2]);
    expect(listing(r.stdout).sort()).toEqual(listing(viaNode.stdout).sort());
  });

  it('hands a descriptor of the caller\'s over as descriptor 3, which stays the caller\'s', async () => {
    const [read, write] = pipeCloexec();
    try {
      const p = await spawnWithoutFork('/bin/sh', ['-c', 'echo through-3 >&3'], { fd3: write });
      const [, , exit] = await Promise.all([readToEnd(p.stdout), readToEnd(p.stderr), p.exited]);
      expect(exit.code).toBe(0);
      // Still open here: the child's copy closed with it, ours did not.
      writeSync(write, 'ours\n');
      closeSync(write);
      expect(await readToEnd(new Socket({ fd: read, readable: true, writable: false }))).toBe('through-3\nours\n');
    } catch (err) {
      closeSync(read);
      throw err;
    }
    await expect(spawnWithoutFork('/bin/true', [], { fd3Pipe: true, fd3: 9 })).rejects.toThrow(/descriptor 3 asked as a pipe and as 9/);
  });

  it('runs it in the directory asked for, and names that directory when it cannot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crib-spawn-cwd-'));
    try {
      const p = await spawnWithoutFork('/bin/pwd', [], { cwd: dir });
      const [out] = await Promise.all([readToEnd(p.stdout), readToEnd(p.stderr), p.exited]);
      expect(out.trim()).toBe(dir);
      await expect(spawnWithoutFork('/bin/pwd', [], { cwd: join(dir, 'missing') })).rejects.toThrow(`posix_spawn /bin/pwd in ${join(dir, 'missing')}: ENOENT`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with the file named when it cannot be run, and keeps none of the pipes it made for it', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    await expect(spawnWithoutFork('/nonexistent/helper', [])).rejects.toThrow(/posix_spawn \/nonexistent\/helper: ENOENT/);
    // A file that is no program: the kernel's own name for why, not Node's "Unknown system error".
    const dir = mkdtempSync(join(tmpdir(), 'crib-spawn-'));
    try {
      const notAProgram = join(dir, 'data');
      writeFileSync(notAProgram, 'not a program\n', { mode: 0o755 });
      await expect(spawnWithoutFork(notAProgram, [], { stdinPipe: true, fd3Pipe: true })).rejects.toThrow(new RegExp(`posix_spawn ${notAProgram}: ENOEXEC`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(fds()).toBe(before);
  });
});
