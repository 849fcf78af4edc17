// ExecSync's path: the daemon's runExecSync starts `crib-runtime exec --capture-output`, whose own
// process captures the exec'd process's output, kills its tree at the timeout and prints the
// result. What it must do for the user (output apart and whole, exit codes, caps), for the bad
// day (the daemon gone or the runtime killed mid-exec) and for the process itself (it starts with
// default signals whoever started the runtime).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cribRuntime, runProcess } from './support/runtime-runner.js';
import { runExecSync } from '../../src/runtime/exec-sync.js';
import { waitFor } from '../../test-support/daemon.js';

// A container run by crib-runtime under its monitor: the monitor harness, switched to crib's runtime.
process.env.CRIB_TEST_RUNTIME = cribRuntime;
const { Harness } = await import('./support/monitor-harness.js');

let h: Awaited<ReturnType<typeof Harness.create>>;
let id: string;
let seq = 0;

beforeAll(async () => {
  h = await Harness.create();
  const c = await h.create({ args: ['sleep', '1000'] });
  await c.start();
  id = c.id;
});
afterAll(async () => { await h?.cleanup(); });

async function processFile(args: string[]): Promise<string> {
  const path = join(h.dir, `process-${++seq}.json`);
  await writeFile(path, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/' }));
  return path;
}

async function execSync(args: string[], opts: { timeout?: number; maxOutput?: number; id?: string } = {}) {
  const t0 = Date.now();
  const r = await runExecSync({
    runtimeBinary: cribRuntime, runtimeRoot: h.runtimeRoot, id: opts.id ?? id, processFile: await processFile(args),
    timeoutSeconds: opts.timeout ?? 0, maxOutput: opts.maxOutput ?? 1 << 20,
  });
  return { ...r, ms: Date.now() - t0 };
}

/** Host pids of the processes whose command line is exactly `args`. */
function pidsOf(args: string[]): number[] {
  const want = `${args.join('\0')}\0`;
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === want;
    } catch {
      return false;
    }
  });
}

describe('crib-runtime exec --capture-output', () => {
  it('returns stdout and stderr apart, byte for byte, with the exit code', async () => {
    const r = await execSync(['sh', '-c', 'echo out; echo err >&2; printf "\\000\\001\\377"; exit 7']);
    expect(r).toMatchObject({ exitCode: 7, timedOut: false, truncated: false });
    expect([...r.stdout]).toEqual([...Buffer.from('out\n'), 0, 1, 255]);
    expect(r.stderr.toString()).toBe('err\n');
  });

  it('kills the exec\'d process and its children when the timeout passes, and leaves the container alone', async () => {
    const r = await execSync(['sh', '-c', 'sleep 101 & echo started; sleep 100'], { timeout: 1 });
    expect(r.timedOut).toBe(true);
    expect(r.stdout.toString()).toBe('started\n');
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(10_000);
    const ps = await execSync(['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "']);
    expect(ps.stdout.toString()).not.toContain('sleep 101 ');
    expect(ps.stdout.toString()).not.toContain('sleep 100 ');
    expect(ps.stdout.toString()).toContain('sleep 1000 ');
  });

  it('answers once the process has exited and its pipes are quiet, though a child it left holds them', async () => {
    const r = await execSync(['sh', '-c', 'sleep 102 & echo bg'], { timeout: 30 });
    try {
      expect(r).toMatchObject({ exitCode: 0, timedOut: false });
      expect(r.stdout.toString()).toBe('bg\n');
      expect(r.ms).toBeLessThan(5_000);
    } finally {
      for (const pid of pidsOf(['sleep', '102'])) process.kill(pid, 'SIGKILL');
    }
  });

  it('answers at the timeout though a child the process left keeps writing to its pipes', async () => {
    const r = await execSync(['sh', '-c', 'yes chatty & exit 5'], { timeout: 2, maxOutput: 1000 });
    try {
      expect(r).toMatchObject({ exitCode: 5, timedOut: false, truncated: true });
      expect(r.stdout.toString()).toBe('chatty\n'.repeat(1000).slice(0, 1000));
      expect(r.ms).toBeLessThan(8_000);
    } finally {
      for (const pid of pidsOf(['yes', 'chatty'])) process.kill(pid, 'SIGKILL');
    }
  });

  it('caps each stream and says so', async () => {
    const r = await execSync(['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" q; echo small >&2'], { maxOutput: 1000 });
    expect(r.stdout.toString()).toBe('q'.repeat(1000));
    expect(r.stderr.toString()).toBe('small\n');
    expect(r.truncated).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it('starts the process with no signal ignored or blocked, though its caller\'s posix_spawn left some ignored', async () => {
    const r = await execSync(['cat', '/proc/self/status']);
    const masks = r.stdout.toString().split('\n').filter((l) => /^Sig(Ign|Blk):/.test(l));
    expect(masks).toEqual(['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
  });

  it('kills the process at the timeout when its caller is gone (the daemon killed mid-exec)', async () => {
    const runtime = spawn(cribRuntime, ['--root', h.runtimeRoot, 'exec', '--process', await processFile(['sleep', '103']),
      '--capture-output', '1000', '--timeout', '2', id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => runtime.once('exit', () => resolve()));
    const pid = await waitFor('the exec\'d sleep 103', () => pidsOf(['sleep', '103'])[0], 5_000);
    // The caller's ends of the pipes go, as they do with a daemon killed by SIGKILL.
    runtime.stdout.destroy();
    runtime.stderr.destroy();
    try {
      await waitFor('the exec\'d process killed at the timeout', () => !existsProc(pid), 8_000);
      await exited;
    } finally {
      if (existsProc(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('fails the call, naming the signal, when the runtime is killed mid-exec', async () => {
    const run = execSync(['sleep', '104']);
    run.catch(() => undefined);
    const pid = await waitFor('the exec\'d sleep 104', () => pidsOf(['sleep', '104'])[0], 5_000);
    const runtime = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).find((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'crib-runtime'
          && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${h.runtimeRoot}\0exec\0`);
      } catch {
        return false;
      }
    });
    try {
      expect(runtime).toBeDefined();
      process.kill(runtime!, 'SIGKILL');
      await expect(run).rejects.toThrow(/killed by SIGKILL/);
    } finally {
      process.kill(pid, 'SIGKILL'); // the exec'd process, which its killed runtime left running
    }
  });

  it('fails the call with the runtime\'s message for a container that does not exist', async () => {
    await expect(execSync(['true'], { id: `no-such-${process.pid}` })).rejects.toThrow(/no-such-\d+` does not exist/);
  });

  it('refuses a capture with a terminal, --detach or a caller\'s fds, and a timeout without a capture', async () => {
    const p = await processFile(['true']);
    const run = (...args: string[]) => runProcess(cribRuntime, ['--root', h.runtimeRoot, 'exec', '--process', p, ...args, id]);
    for (const extra of [['--detach'], ['--preserve-fds', '1'], ['--capture-output', '0']]) {
      const r = await run('--capture-output', '10', ...extra);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.stderr).toContain('--capture-output');
    }
    expect((await run('--timeout', '5')).stderr).toContain('--timeout `5`: expected seconds (0: none), with --capture-output');
    const tty = join(h.dir, 'tty.json');
    await writeFile(tty, JSON.stringify({ terminal: true, user: { uid: 0, gid: 0 }, args: ['true'], cwd: '/' }));
    const t = await runProcess(cribRuntime, ['--root', h.runtimeRoot, 'exec', '--process', tty, '--capture-output', '10', id]);
    expect(t.stderr).toContain('--capture-output: the process asks for a terminal');
  });
});

function existsProc(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}
