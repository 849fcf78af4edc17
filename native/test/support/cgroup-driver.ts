// Builds native/test/support/cgroup-driver.c against the cgroup library and runs its
// subcommands, so the cgroup suites drive the real library on real cgroups.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface Driver {
  bin: string;
  dir: string;
  cleanup(): void;
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Same flags as native/Makefile, so a warning the build would reject fails here too.
// common/error.c is not ours to change; -Wno-format-truncation keeps a gcc false positive in it
// from blocking the cgroup library's tests (our own sources get the full -Werror set).
// CRIB_CGROUP_DRIVER names a driver built beforehand: the cgroup v2 guest tier builds it on the
// host, where compiling takes seconds instead of the emulated guest's minute.
export async function buildDriver(): Promise<Driver> {
  const prebuilt = process.env.CRIB_CGROUP_DRIVER;
  if (prebuilt) return { bin: prebuilt, dir: dirname(prebuilt), cleanup: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'crib-cgroup-driver-'));
  const bin = join(dir, 'cgroup-driver');
  const libSources = readdirSync(join(nativeDir, 'src/cgroup'))
    .filter((f) => f.endsWith('.c'))
    .map((f) => join(nativeDir, 'src/cgroup', f));
  const flags = ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Wformat=2', '-Werror', '-O2', '-g'];
  const includes = ['-I', join(nativeDir, 'include'), '-I', join(nativeDir, 'src')];
  const objects: string[] = [];
  for (const src of [join(nativeDir, 'test/support/cgroup-driver.c'), ...libSources]) {
    const obj = join(dir, src.replace(/[/.]/g, '_') + '.o');
    await execFileP('cc', [...flags, ...includes, '-c', '-o', obj, src]);
    objects.push(obj);
  }
  const errorObj = join(dir, 'error.o');
  await execFileP('cc', [...flags, '-Wno-format-truncation', ...includes, '-c', '-o', errorObj,
    join(nativeDir, 'common/error.c')]);
  await execFileP('cc', ['-o', bin, ...objects, errorObj, '-ljansson']);
  return { bin, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function runDriver(driver: Driver, args: string[], env: NodeJS.ProcessEnv = {}):
  Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(driver.bin, args, {
      env: { ...process.env, CRIB_CGROUP_ROOT: '', CRIB_CGROUP_MODE: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({ code: code ?? -1, signal, stdout, stderr }));
  });
}

// Runs a subcommand that must succeed; the driver's stderr is in the thrown message.
export async function driverOk(driver: Driver, args: string[], env: NodeJS.ProcessEnv = {}):
  Promise<string> {
  const r = await runDriver(driver, args, env);
  if (r.code !== 0) throw new Error(`cgroup-driver ${args.join(' ')}: ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function uniqueName(tag: string): string {
  return `crib-test-${process.pid}-${tag}-${Math.random().toString(36).slice(2, 8)}`;
}

// A process that sleeps until killed, for moving into cgroups.
export function spawnSleeper(): ChildProcess {
  const child = spawn('/bin/busybox', ['sleep', '600'], { stdio: 'ignore' });
  child.on('error', () => {});
  return child;
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function pidsOf(stdout: string): number[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map(Number).sort((a, b) => a - b);
}
