// How crib-runtime's processes get into their container's cgroup (native/src/cgroup/cgroup-enter.c):
// on v1 the container init and every exec'd process move themselves by writing "0" to `tasks`
// in each hierarchy, instead of the parent paying ~10 ms for a cgroup.procs write; they end up
// in the container's cgroup on every v1 controller, and only the hierarchies under
// CRIB_CGROUP_ROOT are used.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sealedMemfdCopy } from '../../src/sys/sealed-memfd.js';
import { makeBundle, testTag, type Bundle, type Spec } from './support/runtime-bundle.js';
import {
  NOTHING_LEFT, Runtime, buildHelper, cribRuntime, deleteListed, hasBinary, leftovers, runProcess, waitFor,
} from './support/runtime-runner.js';

let rt: Runtime;
let helpers: string;
let reaperBin: string;
const bundles: Bundle[] = [];
const reapers: ChildProcess[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
  helpers = await mkdtemp(join(tmpdir(), `${testTag}-helpers-`));
  reaperBin = buildHelper('runtime-reaper', helpers);
});

afterAll(async () => {
  const listed = await deleteListed(rt);
  for (const p of reapers) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await Promise.all(reapers.map((p) => (p.exitCode === null && p.signalCode === null
    ? new Promise((r) => p.on('close', r)) : undefined)));
  for (const b of bundles) await b.remove();
  await rm(helpers, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** `[prefix...] crib-runtime create` under the subreaper helper (the container init needs a
 * reaper); resolves once the pid file is written, i.e. create has parked the init. */
async function create(env: NodeJS.ProcessEnv = {}, prefix: string[] = [], bin = cribRuntime):
  Promise<{ b: Bundle; pid: number; cmdDone: Promise<string>; stderr: () => string }> {
  // No device rules: the private-root test has no devices hierarchy to write them to.
  const b = await makeBundle('enter', ['sleep', '1000'], (s: Spec) => { delete s.linux.resources; });
  bundles.push(b);
  const p = spawn(reaperBin, [...prefix, bin, '--root', rt.root, 'create', '--bundle', b.dir,
    '--pid-file', join(b.dir, 'pid'), b.id], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  reapers.push(p);
  let stderr = '';
  let reports = '';
  p.stderr!.on('data', (d) => { stderr += d; });
  p.stdio[3]!.on('data', (d: Buffer) => { reports += d; });
  const cmdDone = waitFor('create to finish', () => /^cmd (\d+)$/m.exec(reports)?.[1]);
  const pidFile = join(b.dir, 'pid');
  await waitFor('create to park the init', () => existsSync(pidFile) || /^cmd /m.test(reports));
  expect(stderr).toBe('');
  return { b, pid: Number(await readFile(pidFile, 'utf8')), cmdDone, stderr: () => stderr };
}

/** hierarchy ("pids", "cpu,cpuacct", "name=systemd") → cgroup path, from /proc/<pid>/cgroup;
 * v1 lines only (the hybrid layout's empty cgroup2 line is 0::). */
function v1Cgroups(pid: number | 'self'): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [id, controllers, path] = line.split(':');
    if (id !== '0') out.set(controllers!, path!);
  }
  return out;
}

/** The v1 hierarchies' mount points under /sys/fs/cgroup. */
function v1Mounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .filter((l) => l.includes(' - cgroup ') && l.split(' ')[4]!.startsWith('/sys/fs/cgroup/'))
    .map((l) => l.split(' ')[4]!);
}

/** Paths opened for writing, from an `strace -f -e trace=openat` log. */
function openedForWrite(log: string): string[] {
  return [...log.matchAll(/openat\(AT_FDCWD, "([^"]+)", (O_[A-Z_|]+)/g)]
    .filter((m) => /O_WRONLY|O_RDWR/.test(m[2]!))
    .map((m) => m[1]!);
}

describe('entering the container cgroup (cgroup v1)', () => {
  it('the init and an exec\'d process are in the container cgroup on every v1 controller', async () => {
    const { b, pid } = await create();
    const want = b.spec.linux.cgroupsPath as string;
    const init = v1Cgroups(pid);
    // Every hierarchy the host has, none left behind.
    expect([...init.keys()].sort()).toEqual([...v1Cgroups('self').keys()].sort());
    for (const [h, path] of init) expect(`${h}:${path}`).toBe(`${h}:${want}`);
    expect((await rt.exec(['start', b.id])).code).toBe(0);

    const pidFile = join(b.dir, 'exec.pid');
    const e = await rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sh', '-c', 'exec sleep 1000 2>/dev/null'], { detached: true });
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    const epid = Number(await readFile(pidFile, 'utf8'));
    expect(v1Cgroups(epid)).toEqual(init);
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it.skipIf(!hasBinary('strace'))('the child moves itself through `tasks`; nobody writes cgroup.procs', async () => {
    // Traced until the container process execs (-b execve), i.e. through create and start.
    const createLog = join(helpers, 'create.strace');
    const strace = (log: string) => ['strace', '-f', '-qq', '-b', 'execve', '-e', 'trace=openat', '-o', log];
    // From a sealed copy, as the daemon runs it: the runtime then makes no copy of itself, whose
    // execveat would end the trace before any cgroup work (native/include/crib-sealed-exe.h).
    const sealedFd = sealedMemfdCopy(cribRuntime, 'crib-runtime');
    const sealed = `/proc/${process.pid}/fd/${sealedFd}`;
    const { b, cmdDone } = await create({}, strace(createLog), sealed);
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    expect(await cmdDone).toBe('0');
    const execLog = join(helpers, 'exec.strace');
    const [bin, ...args] = strace(execLog);
    const e = await runProcess(bin!, [...args, sealed, '--root', rt.root, 'exec', b.id, 'true']);
    closeSync(sealedFd);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);

    const cgroupDirs = v1Mounts().map((m) => m + b.spec.linux.cgroupsPath).sort();
    for (const log of [createLog, execLog]) {
      const written = openedForWrite(readFileSync(log, 'utf8'));
      expect(written.filter((p) => p.endsWith('/cgroup.procs'))).toEqual([]);
      // One tasks write per hierarchy ("cpu" may be reached through a symlink to "cpu,cpuacct").
      const tasks = written.filter((p) => p.endsWith('/tasks')).map((p) => realpathSync(dirname(p))).sort();
      expect(tasks).toEqual(cgroupDirs);
    }
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('uses only the hierarchies under CRIB_CGROUP_ROOT', async () => {
    // A private root holding one real v1 hierarchy: pids, mounted a second time.
    const root = await mkdtemp(join(tmpdir(), `${testTag}-cgroot-`));
    await mkdir(join(root, 'pids'));
    try {
      execFileSync('mount', ['-t', 'cgroup', '-o', 'pids', 'cgroup', join(root, 'pids')]);
      const env = { CRIB_CGROUP_ROOT: root, CRIB_CGROUP_MODE: 'v1' };
      const { b, pid } = await create(env);
      const want = b.spec.linux.cgroupsPath as string;
      const mine = v1Cgroups('self');
      const expected = new Map([...mine].map(([h, p]) => [h, h === 'pids' ? want : p]));
      expect(v1Cgroups(pid)).toEqual(expected);
      expect((await rt.exec(['start', b.id], { env: { ...process.env, ...env } })).code).toBe(0);
      const pidFile = join(b.dir, 'exec.pid');
      const e = await rt.exec(['exec', '--detach', '--pid-file', pidFile, b.id, 'sh', '-c', 'exec sleep 1000 2>/dev/null'],
        { detached: true, env: { ...process.env, ...env } });
      expect(e.stderr).toBe('');
      expect(v1Cgroups(Number(await readFile(pidFile, 'utf8')))).toEqual(expected);
      expect((await rt.exec(['delete', '--force', b.id], { env: { ...process.env, ...env } })).code).toBe(0);
    } finally {
      try { execFileSync('umount', [join(root, 'pids')], { stdio: 'ignore' }); } catch { /* not mounted */ }
      await rm(root, { recursive: true, force: true });
    }
  });
});
