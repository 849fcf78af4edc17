// crib-monitor exec-sync: output capture per stream, exit code, timeout kill of the exec'd process
// tree, and the output cap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, MONITOR, RUNTIME, type Container } from './support/monitor-harness.js';

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

async function execSync(args: string[], opts: { timeout?: number; maxOutput?: number } = {}):
  Promise<ExecResult & { ms: number }> {
  const processPath = join(h.dir, `process-${++seq}.json`);
  await writeFile(processPath, JSON.stringify({
    terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/',
  }));
  const argv = ['exec-sync', '--runtime', RUNTIME, '--runtime-root', h.runtimeRoot, '--id', c.id,
    '--process', processPath];
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
      h.runtimeRoot, '--id', c.id, '--process', processPath]);
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
      h.runtimeRoot, '--id', `no-such-${process.pid}`, '--process', processPath, '--timeout', '10']);
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
    const missing = await run(['--runtime', RUNTIME, '--id', 'x', '--bundle', '/b']);
    expect(missing).toMatchObject({ code: 2 });
    expect((missing as { stderr: string }).stderr).toContain('--log-path is required');
  });
});
