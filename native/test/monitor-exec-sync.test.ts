// crib-monitor exec-sync, the ExecSync of runtime handlers other than crib-runtime (whose own
// `exec --capture-output` runtime-exec-capture.test.ts tests): output capture per stream, exit
// code, timeout kill of the exec'd process tree, the output cap, and the exec'd process's pid
// file (where the caller says, never /tmp).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, MONITOR, RUNTIME, type Container } from './support/monitor-harness.js';
import { runExecSync } from '../../src/runtime/exec-sync.js';
import { waitFor } from '../../test-support/daemon.js';

const execFileP = promisify(execFile);

interface ExecResult { exitCode: number; stdout: string; stderr: string; timedOut: boolean; truncated: boolean }

let h: Harness;
let c: Container;
let seq = 0;

beforeAll(async () => {
  h = await Harness.create();
  c = await h.create({ args: ['sleep', '1000'] });
  await c.start();
});
afterAll(async () => { await h?.cleanup(); });

/** The private dirs crib-monitor exec-sync makes in /tmp when it is given no pid file. */
const execDirsInTmp = () => readdirSync('/tmp').filter((n) => n.startsWith('crib-exec-'));

/** The pid the runtime writes to `pidFile` once the exec'd process runs. */
const writtenPid = (pidFile: string) =>
  waitFor(`a pid in ${pidFile}`, async () => Number(await readFile(pidFile, 'utf8').catch(() => '0')) || undefined, 1500);

/** Where each exec's pid file goes: the harness's dir stands for the container's state dir. */
const pidFileArgs = () => ['--container-pid-file', join(h.dir, `exec-${++seq}.pid`)];

async function execSync(args: string[], opts: { timeout?: number; maxOutput?: number; pidFile?: string | null } = {}):
  Promise<ExecResult & { ms: number }> {
  const processPath = join(h.dir, `process-${++seq}.json`);
  await writeFile(processPath, JSON.stringify({
    terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/',
  }));
  const argv = ['exec-sync', '--runtime', RUNTIME, '--runtime-root', h.runtimeRoot, '--id', c.id,
    '--process', processPath, ...(opts.pidFile ? ['--container-pid-file', opts.pidFile] : opts.pidFile === null ? [] : pidFileArgs())];
  if (opts.timeout !== undefined) argv.push('--timeout', String(opts.timeout));
  if (opts.maxOutput !== undefined) argv.push('--max-output', String(opts.maxOutput));
  const t0 = Date.now();
  const { stdout } = await execFileP(MONITOR, argv, { timeout: 50_000, maxBuffer: 64 << 20 });
  const r = JSON.parse(stdout) as ExecResult;
  return {
    ...r,
    stdout: Buffer.from(r.stdout, 'base64').toString('utf8'),
    stderr: Buffer.from(r.stderr, 'base64').toString('utf8'),
    ms: Date.now() - t0,
  };
}

describe('crib-monitor exec-sync', () => {
  it('captures stdout and stderr apart and returns the exit code', async () => {
    const r = await execSync(['sh', '-c', 'echo out; echo err >&2; printf "\\001\\377"; exit 7']);
    expect(r).toMatchObject({ exitCode: 7, stderr: 'err\n', timedOut: false, truncated: false });
    expect(Buffer.from(r.stdout, 'utf8').subarray(0, 4).toString()).toBe('out\n');
  });

  it('keeps binary output intact through base64', async () => {
    const processPath = join(h.dir, 'bin.json');
    await writeFile(processPath, JSON.stringify({
      terminal: false, user: { uid: 0, gid: 0 }, env: ['PATH=/bin'], cwd: '/',
      args: ['sh', '-c', 'printf "\\000\\001\\377abc"'],
    }));
    const { stdout } = await execFileP(MONITOR, ['exec-sync', '--runtime', RUNTIME, '--runtime-root',
      h.runtimeRoot, '--id', c.id, '--process', processPath, ...pidFileArgs()]);
    const r = JSON.parse(stdout) as ExecResult;
    expect([...Buffer.from(r.stdout, 'base64')]).toEqual([0, 1, 255, 97, 98, 99]);
    expect(r.exitCode).toBe(0);
  });

  it('kills the exec\'d process and its children when the timeout passes', async () => {
    const r = await execSync(['sh', '-c', 'sleep 101 & echo started; sleep 100'], { timeout: 1 });
    expect(r.timedOut).toBe(true);
    expect(r.stdout).toBe('started\n');
    expect(r.ms).toBeLessThan(10_000);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    // Neither sleep survived in the container.
    const ps = await execSync(['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "']);
    expect(ps.stdout).not.toContain('sleep 101 ');
    expect(ps.stdout).not.toContain('sleep 100 ');
    expect(ps.stdout).toContain('sleep 1000 '); // the container itself is untouched
  });

  it('has the runtime write the exec\'d pid to --container-pid-file, removes it when done, and makes nothing in /tmp', async () => {
    const before = execDirsInTmp();
    const pidFile = join(h.dir, 'timed-exec.pid');
    const run = execSync(['sleep', '100'], { timeout: 2, pidFile });
    const pid = await writtenPid(pidFile);
    // The host's pid of the exec'd process, which the timeout kills through it.
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('sleep\u0000100\u0000');
    const r = await run;
    expect(r.timedOut).toBe(true);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    expect(execDirsInTmp()).toEqual(before);
  });

  it('leaves no pid file when the monitor is killed mid-exec: the daemon removes it (runExecSync)', async () => {
    const processFile = join(h.dir, 'killed-monitor.json');
    await writeFile(processFile, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args: ['sleep', '100'], env: ['PATH=/bin'], cwd: '/' }));
    const pidFile = join(h.dir, 'killed-monitor.pid');
    const run = runExecSync({
      runtimeBinary: RUNTIME, runtimeRoot: h.runtimeRoot, id: c.id, processFile, monitorPidFile: pidFile, timeoutSeconds: 0, maxOutput: 1 << 20,
    });
    run.catch(() => undefined);
    const pid = await writtenPid(pidFile);
    expect(pid).toBeGreaterThan(0);
    const monitor = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).find((n) => {
      try {
        return readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').includes(pidFile) && readFileSync(`/proc/${n}/comm`, 'utf8').trim() === 'crib-monitor';
      } catch {
        return false;
      }
    });
    expect(monitor).toBeDefined();
    try {
      process.kill(Number(monitor), 'SIGKILL');
      await expect(run).rejects.toThrow(/killed by SIGKILL/);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      process.kill(pid, 'SIGKILL'); // the exec'd process, which its killed monitor left running
    }
  });

  it('without --container-pid-file (a daemon from before it, until an upgrade restarts it), keeps the pid file in a private dir of /tmp, removed after', async () => {
    const before = execDirsInTmp();
    const r = await execSync(['sh', '-c', 'sleep 102 & echo started; sleep 100'], { timeout: 1, pidFile: null });
    expect(r).toMatchObject({ timedOut: true, stdout: 'started\n' });
    const ps = await execSync(['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "']);
    expect(ps.stdout).not.toContain('sleep 102 ');
    expect(execDirsInTmp()).toEqual(before);
  });

  it('replaces a file already at --container-pid-file, never reading it as the exec\'s', async () => {
    const pidFile = join(h.dir, 'stale-exec.pid');
    await writeFile(pidFile, String(process.pid));
    const r = await execSync(['true'], { pidFile });
    expect(r).toMatchObject({ exitCode: 0, timedOut: false });
    expect(existsSync(pidFile)).toBe(false);
  });

  it('caps each stream at --max-output and reports the truncation', async () => {
    const r = await execSync(['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" q; echo small >&2'],
      { maxOutput: 1000 });
    expect(r.stdout).toBe('q'.repeat(1000));
    expect(r.stderr).toBe('small\n');
    expect(r.truncated).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it('reports the runtime failure for a container that does not exist', async () => {
    const processPath = join(h.dir, 'none.json');
    await writeFile(processPath, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args: ['true'], cwd: '/' }));
    const { stdout } = await execFileP(MONITOR, ['exec-sync', '--runtime', RUNTIME, '--runtime-root',
      h.runtimeRoot, '--id', `no-such-${process.pid}`, '--process', processPath, '--timeout', '10', ...pidFileArgs()]);
    const r = JSON.parse(stdout) as ExecResult;
    expect(r.exitCode).not.toBe(0);
    expect(Buffer.from(r.stderr, 'base64').toString()).toMatch(/not exist|no such|not found/i);
  });
});

describe('crib-monitor arguments', () => {
  it('rejects a relative path, a bad id and a missing option with exit status 2', async () => {
    const run = (args: string[]) => execFileP(MONITOR, args).then(() => 0, (e: { code: number; stderr: string }) => e);
    const rel = await run(['exec-sync', '--runtime', 'runc', '--id', 'x', '--process', '/p']);
    expect(rel).toMatchObject({ code: 2 });
    // The whole message: the format once had two %s for one argument and printed stack garbage.
    expect((rel as { stderr: string }).stderr).toContain('--runtime must be an absolute path, got `runc` (see');
    const id = await run(['exec-sync', '--runtime', RUNTIME, '--id', '../x', '--process', '/p']);
    expect(id).toMatchObject({ code: 2 });
    const relPidFile = await run(['exec-sync', '--runtime', RUNTIME, '--id', 'x', '--process', '/p', '--container-pid-file', 'x.pid']);
    expect(relPidFile).toMatchObject({ code: 2 });
    expect((relPidFile as { stderr: string }).stderr).toContain('--container-pid-file must be an absolute path');
    const missing = await run(['--runtime', RUNTIME, '--id', 'x', '--bundle', '/b']);
    expect(missing).toMatchObject({ code: 2 });
    expect((missing as { stderr: string }).stderr).toContain('--log-path is required');
  });
});
