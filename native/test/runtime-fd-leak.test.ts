// The runc CVE-2024-21626 class at the runtime's own interface: a caller that leaks a directory
// fd of the host into crib-runtime (fd 7 here, on a host dir holding a marker file and a binary)
// must not let process.cwd or args[0] reach through /proc/self/fd/7, for create and for exec.
// Before the fix the fd was close-on-exec only, so during the chdir and the execve it still
// resolved: the container started in the host dir, or ran the host's binary.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, testTag, type Bundle } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, deleteListed, leftovers, type RunResult } from './support/runtime-runner.js';

let rt: Runtime;
let hostDir: string;
let leaked: number;
const bundles: Bundle[] = [];

/** crib-runtime with the host dir open as its fd 7 (what a careless caller would leak). */
function runLeaking(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(rt.bin, ['--root', rt.root, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', leaked],
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    p.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', reject);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** `run --detach` with no pipes: the container's init keeps its stdio for its whole life. */
function startDetached(b: Bundle): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(rt.bin, ['--root', rt.root, 'run', '--detach', '--bundle', b.dir, b.id], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => resolve(code));
  });
}

async function bundle(name: string, args: string[], cwd = '/'): Promise<Bundle> {
  const b = await makeBundle(name, args, (s) => { s.process.cwd = cwd; });
  bundles.push(b);
  return b;
}

beforeAll(async () => {
  rt = await Runtime.crib();
  hostDir = await mkdtemp(join(tmpdir(), `${testTag}-hostdir-`));
  await writeFile(join(hostDir, 'host-marker'), 'host\n');
  // A static binary of the host's: named busybox, it runs the applet its arguments name.
  await copyFile('/bin/busybox', join(hostDir, 'busybox'));
  await chmod(join(hostDir, 'busybox'), 0o755);
  leaked = openSync(hostDir, 'r');
});

afterAll(async () => {
  closeSync(leaked);
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  await rm(hostDir, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

describe('a directory fd leaked into crib-runtime', () => {
  it('create: process.cwd /proc/self/fd/7 is refused, never the host dir', async () => {
    const b = await bundle('cwd-leak', ['/bin/sh', '-c', 'ls; echo cwd-was-usable'], '/proc/self/fd/7');
    const r = await runLeaking(['run', '--bundle', b.dir, b.id]);
    expect(r.stdout).not.toContain('host-marker');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/process\.cwd/);
  });

  it('create: args[0] through /proc/self/fd/7 does not run the host\'s file; the process has stdio only', async () => {
    const b = await bundle('args-leak', ['/proc/self/fd/7/busybox', 'echo', 'ran-the-host-binary']);
    const r = await runLeaking(['run', '--bundle', b.dir, b.id]);
    expect(r.stdout).not.toContain('ran-the-host-binary');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/process\.args\[0\]/);
    const fds = await bundle('fds-leak', ['/bin/sh', '-c', 'for f in /proc/self/fd/*; do echo "${f##*/}"; done']);
    const listed = await runLeaking(['run', '--bundle', fds.dir, fds.id]);
    expect(listed.code).toBe(0);
    // 0-2, plus the fd the shell's glob opened on /proc/self/fd itself (3) at most.
    expect(listed.stdout.split('\n').filter(Boolean).map(Number).filter((n) => n > 3)).toEqual([]);
  });

  it('exec: --cwd /proc/self/fd/7 and args[0] through it are refused', async () => {
    const b = await bundle('exec-leak', ['/bin/sleep', '30']);
    expect(await startDetached(b)).toBe(0);
    const cwd = await runLeaking(['exec', '--cwd', '/proc/self/fd/7', b.id, '/bin/sh', '-c', 'ls; echo cwd-was-usable']);
    expect(cwd.stdout).not.toContain('host-marker');
    expect(cwd.code).not.toBe(0);
    expect(cwd.stderr).toMatch(/process\.cwd/);
    const args = await runLeaking(['exec', b.id, '/proc/self/fd/7/busybox', 'echo', 'ran-the-host-binary']);
    expect(args.stdout).not.toContain('ran-the-host-binary');
    expect(args.code).not.toBe(0);
    const fds = await runLeaking(['exec', b.id, '/bin/sh', '-c', 'test -e /proc/self/fd/7 && echo fd7-open || echo fd7-closed']);
    expect(fds.stdout).toBe('fd7-closed\n');
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });
});
