// spawn_runtime (native/monitor/spawn.c), how the monitor starts crib-runtime for every ExecSync
// and container create, driven through a small C driver: the runtime starts with default signal
// dispositions, an empty mask and only stdio open, whatever the monitor had; the monitor's own
// mask and handlers are as they were; and it vforks (the driver aborts on a fork).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
let work: string;
let driver: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'crib-spawn-'));
  driver = join(work, 'spawn-driver');
  // The Makefile's flags, so a warning the build rejects fails here too.
  execFileSync('cc', ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Wformat=2', '-Werror', '-O2',
    '-Wl,--wrap=fork', '-I', join(nativeDir, 'include'), '-I', join(nativeDir, 'monitor'), '-o', driver,
    join(nativeDir, 'test/support/spawn-driver.c'), join(nativeDir, 'monitor/spawn.c'), join(nativeDir, 'monitor/fd-util.c'),
    join(nativeDir, 'common/error.c'), join(nativeDir, 'common/signal-reset.c')]);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function drive(...argv: string[]) {
  const r = spawnSync(driver, argv, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('spawn_runtime', () => {
  it('starts the program with default signals, an empty mask and only stdio, leaving the monitor as it was', () => {
    const r = drive('/bin/sh', '-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status; ls /proc/self/fd');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // SIGCHLD (17) and SIGTERM (15) blocked in the driver: bits 16 and 14.
    expect(lines[0]).toBe('mask before 0000000000014000');
    expect(lines).toContain('SigBlk:\t0000000000000000');
    expect(lines).toContain('SigIgn:\t0000000000000000');
    // Descriptors 0-2, and 3, the one ls reads /proc/self/fd through; not the driver's fd 7.
    expect(lines.filter((l) => /^\d+$/.test(l))).toEqual(['0', '1', '2', '3']);
    expect(lines.slice(-3)).toEqual(['status 0', 'mask after 0000000000014000', 'handler kept']);
  });

  it('a program that cannot be executed exits 127 with the reason, the monitor unchanged', () => {
    const r = drive(join(work, 'missing-runtime'));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`crib-monitor: exec \`${join(work, 'missing-runtime')}\`: No such file or directory\n`);
    expect(r.stdout.trim().split('\n')).toEqual(['mask before 0000000000014000', 'status 127',
      'mask after 0000000000014000', 'handler kept']);
  });
});
