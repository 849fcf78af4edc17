import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  crashSpawnThreadForTest, execFileOnThread, setSpawnThreadIdleMs, spawnDetachedOnThread, spawnOnThread,
  spawnThreadRunning, spawnThreadStopped,
} from './spawn-thread.js';

/** This process's thread count (a worker thread is one more while it runs). */
const threads = (): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

describe('spawnOnThread', () => {
  it('gives the whole stdout and stderr and the exit code of the command', async () => {
    const big = 200_000; // more than one pipe buffer: read to the end, not to the first chunk
    const r = await spawnOnThread('/bin/sh', ['-c', `head -c ${big} /dev/zero | tr '\\0' x; echo oops >&2; exit 3`]);
    expect(r.stdout).toBe('x'.repeat(big));
    expect(r.stderr).toBe('oops\n');
    expect(r.code).toBe(3);
    expect(r.error).toBeUndefined();
  });

  it('runs calls concurrently and answers each with its own result', async () => {
    const rs = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((n) => spawnOnThread('/bin/sh', ['-c', `echo ${n}; exit ${n}`])));
    expect(rs.map((r) => [r.stdout, r.code])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => [`${n}\n`, n]));
  });

  it('reports a command that cannot be started as an error naming it', async () => {
    const r = await spawnOnThread('/nonexistent/crib-no-such-binary', []);
    expect(r.code).toBeNull();
    expect(r.error?.message).toMatch(/crib-no-such-binary.*ENOENT/);
  });

  it('execFileOnThread feeds stdin, and reports exit codes and execFile\'s error', async () => {
    const ok = await execFileOnThread('/bin/sh', ['-c', 'cat; echo done >&2'], { timeoutMs: 10_000, maxBuffer: 1 << 20, input: 'fed' });
    expect([ok.stdout, ok.stderr, ok.code, ok.killed, ok.error]).toEqual(['fed', 'done\n', 0, false, undefined]);
    const failed = await execFileOnThread('/bin/sh', ['-c', 'echo why >&2; exit 4'], { timeoutMs: 10_000, maxBuffer: 1 << 20 });
    expect([failed.stderr, failed.code, failed.killed]).toEqual(['why\n', 4, false]);
    expect(failed.error?.message).toMatch(/Command failed/);
  });

  it('execFileOnThread kills a command that outlives its time, even one ignoring SIGTERM', async () => {
    const t0 = Date.now();
    const r = await execFileOnThread('/bin/sh', ['-c', 'trap "" TERM; exec sleep 30'], { timeoutMs: 200, maxBuffer: 1 << 20 });
    expect(r.killed).toBe(true);
    expect(r.error).toBeDefined();
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('execFileOnThread streams stdout to onStdout while the command runs, and still resolves with all of it', async () => {
    const chunks: { text: string; at: number }[] = [];
    let settled = false;
    const call = execFileOnThread('/bin/sh', ['-c', 'echo ready; sleep 1; echo end'], {
      timeoutMs: 10_000,
      maxBuffer: 1 << 20,
      onStdout: (text) => chunks.push({ text, at: Date.now() }),
    }).finally(() => (settled = true));
    await expect.poll(() => chunks.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(chunks[0]!.text).toBe('ready\n');
    expect(settled).toBe(false); // the first line came while the command was still sleeping
    const r = await call;
    expect(r.stdout).toBe('ready\nend\n');
    expect(chunks.map((c) => c.text).join('')).toBe('ready\nend\n');
    expect(Date.now() - chunks[0]!.at).toBeGreaterThan(500);
  });

  it('execFileOnThread sends the timeout\'s killSignal when asked for one', async () => {
    // The trap's exit status shows the command got SIGTERM (execFile closes its pipes on a timeout, so it cannot say so).
    const r = await execFileOnThread('/bin/sh', ['-c', 'trap "exit 7" TERM; sleep 30 & wait'], { timeoutMs: 300, killSignal: 'SIGTERM', maxBuffer: 1 << 20 });
    expect([r.code, r.killed]).toEqual([7, true]);
  });

  it('execFileOnThread fails a command whose output passes the bound', async () => {
    const r = await execFileOnThread('/bin/sh', ['-c', 'head -c 100000 /dev/zero'], { timeoutMs: 10_000, maxBuffer: 1000 });
    expect(r.error?.message).toMatch(/maxBuffer/);
  });
});

describe('spawnDetachedOnThread', () => {
  it('reports the first process\'s exit with its stderr at once, and the detached one\'s sync line when it comes', async () => {
    // Like crib-monitor: the first process exits at once; its detached child drops stderr and
    // writes its report on fd 3 later.
    const script = 'echo launching >&2; ( exec 2>/dev/null; sleep 0.5; echo \'{"pid": 42}\' >&3; echo more >&3 ) & exit 0';
    const t0 = Date.now();
    const { exited, syncLine } = spawnDetachedOnThread('/bin/sh', ['-c', script]);
    let synced = false;
    void syncLine.then(() => (synced = true));
    expect(await exited).toEqual({ code: 0, stderr: 'launching' });
    expect(synced).toBe(false); // the exit did not wait for the report
    expect(await syncLine).toBe('{"pid": 42}');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it('gives the exit code and stderr of a first process that fails, and an empty sync line', async () => {
    const { exited, syncLine } = spawnDetachedOnThread('/bin/sh', ['-c', 'echo bad arguments >&2; exit 2']);
    expect(await exited).toEqual({ code: 2, stderr: 'bad arguments' });
    expect(await syncLine).toBe('');
  });

  it('reports a binary that cannot be started as an exit without a code, naming it', async () => {
    const { exited, syncLine } = spawnDetachedOnThread('/nonexistent/crib-no-such-monitor', []);
    const r = await exited;
    expect(r.code).toBeNull();
    expect(r.stderr).toMatch(/crib-no-such-monitor.*ENOENT/);
    expect(await syncLine).toBe('');
  });
});

describe('spawnDetachedOnThread bounds', () => {
  it('keeps the first 64 KiB of a flood on stderr and says how much it dropped', async () => {
    const { exited, syncLine } = spawnDetachedOnThread('/bin/sh', ['-c', 'head -c 1048576 /dev/zero | tr "\\0" e >&2; exit 1']);
    const r = await exited;
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith('e'.repeat(64 << 10))).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`^e{${64 << 10}}… \\(${(1 << 20) - (64 << 10)} more bytes not kept\\)$`));
    expect(await syncLine).toBe('');
  });

  it('fails the sync line when it passes 4 KiB without a newline', async () => {
    // 8 KiB and no newline, the pipe held open: without the bound the thread would wait for
    // the end and hand back all of it.
    const script = '( exec 2>/dev/null; head -c 8192 /dev/zero | tr "\\0" s >&3; sleep 2 ) & exit 0';
    const { exited, syncLine } = spawnDetachedOnThread('/bin/sh', ['-c', script]);
    expect((await exited).code).toBe(0);
    await expect(syncLine).rejects.toThrow(/\/bin\/sh's sync pipe \(fd 3\): its first line passed 4096 bytes without a newline/);
  });

  it('takes a sync line of exactly 4 KiB', async () => {
    const script = '( exec 2>/dev/null; head -c 4096 /dev/zero | tr "\\0" s >&3; echo >&3 ) & exit 0';
    const { syncLine } = spawnDetachedOnThread('/bin/sh', ['-c', script]);
    expect(await syncLine).toBe('s'.repeat(4096));
  });
});

describe('the spawn thread\'s life', () => {
  afterEach(() => setSpawnThreadIdleMs(undefined));

  it('ends once idle, leaving no thread behind, and starts again on the next call', async () => {
    setSpawnThreadIdleMs(100);
    await spawnOnThread('/bin/true', []);
    await expect.poll(() => spawnThreadRunning(), { timeout: 5000 }).toBe(false);
    await spawnThreadStopped();
    const idle = threads();
    const r = await spawnOnThread('/bin/sh', ['-c', 'echo back']);
    expect([r.stdout, r.code]).toEqual(['back\n', 0]);
    expect(spawnThreadRunning()).toBe(true);
    expect(threads()).toBeGreaterThan(idle);
    await expect.poll(() => spawnThreadRunning(), { timeout: 5000 }).toBe(false);
    await spawnThreadStopped();
    expect(threads()).toBe(idle);
  });

  it('does not end while a call is in flight, however long it runs', async () => {
    setSpawnThreadIdleMs(50);
    const r = await spawnOnThread('/bin/sh', ['-c', 'sleep 0.5; echo slow']);
    expect(r.stdout).toBe('slow\n');
  });

  it('runs a call that arrives while the idle thread is ending', async () => {
    setSpawnThreadIdleMs(30);
    for (let i = 0; i < 5; i++) {
      await spawnOnThread('/bin/true', []);
      await expect.poll(() => spawnThreadRunning(), { timeout: 5000, interval: 1 }).toBe(false);
      // The old thread is still terminating; this call must go to a new one and be answered.
      const ending = spawnThreadStopped();
      const r = await spawnOnThread('/bin/sh', ['-c', `echo ${i}`]);
      expect(r.stdout).toBe(`${i}\n`);
      await ending;
    }
  });

  it('fails the calls in flight with a clear error when the thread dies, and the next call works', async () => {
    const slow = spawnOnThread('/bin/sh', ['-c', 'sleep 5']);
    const detached = spawnDetachedOnThread('/bin/sh', ['-c', 'sleep 5']);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await crashSpawnThreadForTest();
    expect((await slow).error?.message).toMatch(/the daemon's spawn thread exited with code/);
    expect((await detached.exited).stderr).toMatch(/the daemon's spawn thread exited with code/);
    expect(await detached.syncLine).toBe('');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await spawnOnThread('/bin/sh', ['-c', 'echo ok'])).stdout).toBe('ok\n');
  });
});
